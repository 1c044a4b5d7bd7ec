package taskdef

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// readOnlyFields are the TaskDefinition fields ECS sets itself and that
// RegisterTaskDefinition does not take. A field missing from both this list
// and RegisterTaskDefinitionInput fails the test: someone must decide.
var readOnlyFields = map[string]bool{
	"TaskDefinitionArn": true, "Revision": true, "Status": true, "RequiresAttributes": true,
	"Compatibilities": true, "RegisteredAt": true, "RegisteredBy": true, "DeregisteredAt": true,
	"DeleteRequestedAt": true,
}

func TestSDKFieldsAreAllClassified(t *testing.T) {
	tdType := reflect.TypeFor[types.TaskDefinition]()
	inType := reflect.TypeFor[ecs.RegisterTaskDefinitionInput]()
	for i := range tdType.NumField() {
		f := tdType.Field(i)
		if !f.IsExported() || readOnlyFields[f.Name] {
			continue
		}
		in, ok := inType.FieldByName(f.Name)
		if !ok {
			t.Errorf("TaskDefinition.%s is neither registrable nor listed as read-only: decide how to carry it over", f.Name)
			continue
		}
		if in.Type != f.Type {
			t.Errorf("TaskDefinition.%s is %s but RegisterTaskDefinitionInput.%s is %s", f.Name, f.Type, f.Name, in.Type)
		}
	}
	for i := range inType.NumField() {
		f := inType.Field(i)
		if !f.IsExported() || f.Name == "Tags" {
			continue
		}
		if _, ok := tdType.FieldByName(f.Name); !ok {
			t.Errorf("RegisterTaskDefinitionInput.%s has no counterpart in TaskDefinition: a new input this package cannot carry over", f.Name)
		}
	}
}

func TestRegisterInputCarriesEveryField(t *testing.T) {
	var td types.TaskDefinition
	fill(reflect.ValueOf(&td).Elem(), "td", 0)
	tags := []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}}
	in := RegisterInput(&td, tags)

	got := reflect.ValueOf(in).Elem()
	src := reflect.ValueOf(td)
	for i := range got.NumField() {
		f := got.Type().Field(i)
		if !f.IsExported() || f.Name == "Tags" {
			continue
		}
		gv := got.Field(i)
		if gv.IsZero() {
			t.Errorf("RegisterInput leaves %s empty: the field is not carried over", f.Name)
			continue
		}
		if diff := cmp.Diff(src.FieldByName(f.Name).Interface(), gv.Interface(), cmpopts.IgnoreUnexported(allStructs(f.Type)...)); diff != "" {
			t.Errorf("%s changed on the way (-running +registered):\n%s", f.Name, diff)
		}
	}
	if diff := cmp.Diff(tags, in.Tags, cmpopts.IgnoreUnexported(types.Tag{})); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	if RegisterInput(&td, nil).Tags != nil || RegisterInput(&td, []types.Tag{}).Tags != nil {
		t.Error("an empty tag list must be sent as none")
	}
}

// fill sets every exported field reachable from v to a non-zero value, so
// that a field dropped on the way shows up as zero.
func fill(v reflect.Value, path string, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("v-" + path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(int64(7 + depth))
	case reflect.Float64, reflect.Float32:
		v.SetFloat(1.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), path, depth+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), path+"[0]", depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, path+".key", depth+1)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, path+".value", depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), path+"."+v.Type().Field(i).Name, depth+1)
			}
		}
	}
}

// allStructs lists every struct type reachable from t, for IgnoreUnexported.
func allStructs(t reflect.Type) []any {
	seen := map[reflect.Type]bool{}
	var out []any
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(t.Elem())
		case reflect.Map:
			walk(t.Key())
			walk(t.Elem())
		case reflect.Struct:
			if seen[t] || t == reflect.TypeFor[time.Time]() {
				return
			}
			seen[t] = true
			out = append(out, reflect.New(t).Elem().Interface())
			for i := range t.NumField() {
				walk(t.Field(i).Type)
			}
		}
	}
	walk(t)
	return out
}

func sampleTD() *types.TaskDefinition {
	return &types.TaskDefinition{
		Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{
			{Name: aws.String("app"), Image: aws.String("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:main-1")},
			{Name: aws.String("worker"), Image: aws.String("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:" + strings.Repeat("b", 64))},
			{Name: aws.String("proxy"), Image: aws.String("public.ecr.aws/nginx/nginx:1.27")},
			{Name: aws.String("log"), Image: aws.String("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web-logs:1")},
		},
	}
}

func TestChooseContainers(t *testing.T) {
	const repo = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web"
	tests := []struct {
		name    string
		named   []string
		repo    string
		want    []string
		wantErr string
	}{
		{"by repository", nil, repo, []string{"app", "worker"}, ""},
		{"named", []string{"proxy"}, repo, []string{"proxy"}, ""},
		{"named missing", []string{"api"}, repo, nil, `task definition web has no container "api" (it has app, worker, proxy, log)`},
		{"no container from repo", nil, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api", nil, "task definition web has no container from repository 123456789012.dkr.ecr.eu-west-1.amazonaws.com/api"},
		{"other registry is another repository", nil, "999999999999.dkr.ecr.eu-west-1.amazonaws.com/web", nil, "has no container from repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChooseContainers(sampleTD(), tt.named, tt.repo)
			if tt.wantErr != "" {
				var nc *NoContainerError
				if !errors.As(err, &nc) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want NoContainerError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWithImagesLeavesTheOriginal(t *testing.T) {
	td := sampleTD()
	next := WithImages(td, map[string]string{"app": "new:1"})
	if got := Image(next, "app"); got != "new:1" {
		t.Errorf("new app image = %s", got)
	}
	if got := Image(td, "app"); got == "new:1" {
		t.Error("WithImages changed the running task definition")
	}
	if Image(next, "worker") != Image(td, "worker") {
		t.Error("WithImages changed a container it was not asked to")
	}
}

func TestImageParts(t *testing.T) {
	tests := []struct{ image, repo, tag string }{
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:main-1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web", "main-1"},
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web@sha256:" + strings.Repeat("a", 64), "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web", ""},
		{"registry:5000/web:1.0@sha256:" + strings.Repeat("a", 64), "registry:5000/web", "1.0"},
		{"nginx", "nginx", ""},
		{"Not A Ref", "", ""},
	}
	for _, tt := range tests {
		if got := ImageRepository(tt.image); got != tt.repo {
			t.Errorf("ImageRepository(%s) = %q, want %q", tt.image, got, tt.repo)
		}
		if got := ImageTag(tt.image); got != tt.tag {
			t.Errorf("ImageTag(%s) = %q, want %q", tt.image, got, tt.tag)
		}
	}
}

func TestMergeTags(t *testing.T) {
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
	existing := []types.Tag{tag("team", "web"), tag("aws:cloudformation:stack-name", "s"), tag(TagRule, "old"), tag(ContainerTagKey("worker"), "main-0")}
	got, err := MergeTags(existing, map[string]string{TagRule: "web-staging", TagEvent: "e1", ContainerTagKey("app"): "main-2"})
	if err != nil {
		t.Fatal(err)
	}
	want := []types.Tag{tag("team", "web"), tag(ContainerTagKey("worker"), "main-0"),
		tag(ContainerTagKey("app"), "main-2"), tag(TagEvent, "e1"), tag(TagRule, "web-staging")}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(types.Tag{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	var many []types.Tag
	for i := range 48 {
		many = append(many, tag(fmt.Sprintf("k%d", i), "v"))
	}
	_, err = MergeTags(many, map[string]string{TagRule: "r", TagEvent: "e", ContainerTagKey("app"): "t"})
	var tooMany *TooManyTagsError
	if !errors.As(err, &tooMany) || tooMany.Count != 51 {
		t.Fatalf("err = %v, want TooManyTagsError with 51", err)
	}
	if !strings.Contains(err.Error(), "over ECS's limit of 50") {
		t.Errorf("message %q does not name the limit", err)
	}
	if _, err := MergeTags(nil, map[string]string{ContainerTagKey(strings.Repeat("c", 120)): "t"}); err == nil {
		t.Error("a tag key over 128 characters must be refused")
	}
}

func TestRecorded(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tags := []types.Tag{
		{Key: aws.String(ContainerTagKey("app")), Value: aws.String("v1.2.0")},
		{Key: aws.String(ContainerPushedAtKey("app")), Value: aws.String(at.Format(time.RFC3339))},
	}
	tag, pushed := Recorded(tags, "app")
	if tag != "v1.2.0" || !pushed.Equal(at) {
		t.Errorf("Recorded(app) = %s, %s", tag, pushed)
	}
	if tag, pushed := Recorded(tags, "worker"); tag != "" || !pushed.IsZero() {
		t.Errorf("Recorded(worker) = %s, %s, want nothing", tag, pushed)
	}
}
