package ecsarn

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    ARN
		wantErr bool
	}{
		{in: "arn:aws:ecs:eu-west-1:123456789012:cluster/prod", want: ARN{"aws", "eu-west-1", "123456789012", "cluster", "", "prod"}},
		{in: "arn:aws:ecs:eu-west-1:123456789012:service/prod/web", want: ARN{"aws", "eu-west-1", "123456789012", "service", "prod", "web"}},
		{in: "arn:aws-cn:ecs:cn-north-1:123456789012:service/web", want: ARN{"aws-cn", "cn-north-1", "123456789012", "service", "", "web"}},
		{in: "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3", wantErr: true},
		{in: "arn:aws:iam::123456789012:role/x", wantErr: true},
		{in: "prod", wantErr: true},
		{in: "arn:aws:ecs:eu-west-1:123456789012:service/a/b/c", wantErr: true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("Parse(%s) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%s) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestPartitionAndRevision(t *testing.T) {
	for region, want := range map[string]string{"eu-west-1": "aws", "cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov"} {
		if got := Partition(region); got != want {
			t.Errorf("Partition(%s) = %s, want %s", region, got, want)
		}
	}
	if got := Revision("arn:aws:ecs:eu-west-1:123456789012:task-definition/web-prod:42"); got != "web-prod:42" {
		t.Errorf("Revision = %s", got)
	}
	if got := Revision("web-prod:42"); got != "web-prod:42" {
		t.Errorf("Revision of a short name = %s", got)
	}
}

func TestServiceARN(t *testing.T) {
	for _, tt := range []struct{ account, region, want string }{
		{"123456789012", "eu-west-1", "arn:aws:ecs:eu-west-1:123456789012:service/prod/web"},
		{"123456789012", "cn-north-1", "arn:aws-cn:ecs:cn-north-1:123456789012:service/prod/web"},
		{"", "eu-west-1", ""},
	} {
		if got := ServiceARN(tt.account, tt.region, "prod", "web"); got != tt.want {
			t.Errorf("ServiceARN(%q, %q) = %q, want %q", tt.account, tt.region, got, tt.want)
		}
	}
}

// TestName: an ECS cluster or service ARN gives its name; a plain name and
// anything else (another service's ARN, a task definition ARN, something
// merely beginning "arn") come back as they are.
func TestName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"prod", "prod"},
		{"", ""},
		{"arn", "arn"},
		{"arnold", "arnold"},
		{"arn:aws:ecs:eu-west-1:123456789012:cluster/prod", "prod"},
		{"arn:aws:ecs:eu-west-1:123456789012:service/prod/web", "web"},
		{"arn:aws:ecs:eu-west-1:123456789012:service/web", "web"},
		{"arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3", "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3"},
		{"arn:aws:iam::123456789012:role/x", "arn:aws:iam::123456789012:role/x"},
	} {
		if got := Name(tt.in); got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// BenchmarkNamePlain is the loader's case: a plain name, no allocation.
func BenchmarkNamePlain(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if Name("s0001") != "s0001" {
			b.Fatal("name changed")
		}
	}
}

func TestFamilyRevision(t *testing.T) {
	for _, tt := range []struct {
		in     string
		family string
		n      int
	}{
		{"arn:aws:ecs:eu-west-1:111111111111:task-definition/web-prod:12", "web-prod", 12},
		{"web:3", "web", 3},
		{"web", "web", 0},
		{"web:latest", "web:latest", 0},
		{"web:0", "web:0", 0},
		{"arn:aws-cn:ecs:cn-north-1:111111111111:task-definition/a:b:7", "a:b", 7},
	} {
		if f, n := FamilyRevision(tt.in); f != tt.family || n != tt.n {
			t.Errorf("FamilyRevision(%q) = %q, %d, want %q, %d", tt.in, f, n, tt.family, tt.n)
		}
		if f := Family(tt.in); f != tt.family {
			t.Errorf("Family(%q) = %q, want %q", tt.in, f, tt.family)
		}
	}
}
