package promote

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

var rec = history.Record{Rule: "web-staging", Repository: "team/web", RegistryAccount: "123456789012", RegistryRegion: "eu-west-1",
	Tag: "main-1", Digest: "sha256:" + strings.Repeat("ab", 32)}

type fakeECR struct {
	images []ecrtypes.Image
	putErr error
	puts   []*ecr.PutImageInput
}

func (f *fakeECR) BatchGetImage(_ context.Context, in *ecr.BatchGetImageInput, _ ...func(*ecr.Options)) (*ecr.BatchGetImageOutput, error) {
	if len(f.images) == 0 {
		return &ecr.BatchGetImageOutput{Failures: []ecrtypes.ImageFailure{{FailureReason: aws.String("Requested image not found")}}}, nil
	}
	return &ecr.BatchGetImageOutput{Images: f.images}, nil
}

func (f *fakeECR) PutImage(_ context.Context, in *ecr.PutImageInput, _ ...func(*ecr.Options)) (*ecr.PutImageOutput, error) {
	f.puts = append(f.puts, in)
	return &ecr.PutImageOutput{}, f.putErr
}

type fakeLambda struct{ payloads [][]byte }

func (f *fakeLambda) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	f.payloads = append(f.payloads, in.Payload)
	return &lambda.InvokeOutput{}, nil
}

func TestPromote(t *testing.T) {
	image := ecrtypes.Image{ImageManifest: aws.String(`{"schemaVersion":2}`), ImageManifestMediaType: aws.String("application/vnd.oci.image.manifest.v1+json")}
	tests := []struct {
		name     string
		ecr      *fakeECR
		function string
		wantErr  string
		invokes  int
	}{
		{"tags and hands off", &fakeECR{images: []ecrtypes.Image{image}}, "deployer", "", 1},
		{"already tagged is fine", &fakeECR{images: []ecrtypes.Image{image}, putErr: &ecrtypes.ImageAlreadyExistsException{}}, "deployer", "", 1},
		{"no deployer function: no hand-off", &fakeECR{images: []ecrtypes.Image{image}}, "", "", 0},
		{"image gone", &fakeECR{}, "deployer", "Requested image not found", 0},
		{"tagging refused", &fakeECR{images: []ecrtypes.Image{image}, putErr: errors.New("AccessDenied")}, "deployer", "tag team/web@sha256:", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &fakeLambda{}
			p := &Promoter{ECR: func(string, string) ECR { return tt.ecr }, Lambda: l, DeployerFunction: tt.function,
				Now: func() time.Time { return time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC) }}
			err := p.Promote(context.Background(), rec, "verified-main-1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(l.payloads) != tt.invokes {
				t.Errorf("%d hand-offs, want %d", len(l.payloads), tt.invokes)
			}
			if len(tt.ecr.puts) > 0 {
				put := tt.ecr.puts[0]
				if aws.ToString(put.ImageTag) != "verified-main-1" || aws.ToString(put.ImageDigest) != rec.Digest || aws.ToString(put.ImageManifest) != `{"schemaVersion":2}` {
					t.Errorf("PutImage = %+v", put)
				}
			}
		})
	}
}

// What the watcher hands the deployer is a push command the deployer's
// decoder reads as a push of the new tag, at the promotion's time with
// ECR's millisecond precision; the same promotion gives the same event id,
// another tag or digest another one.
func TestHandOff(t *testing.T) {
	at := time.Date(2026, 11, 25, 11, 0, 0, 123_456_789, time.UTC)
	want := work.DeployPush{Origin: "promotion of rule web-staging to tag verified-main-1", Push: work.Push{
		EventID: HandOff(rec, "verified-main-1", at).Push.EventID, RegistryAccount: "123456789012", RegistryRegion: "eu-west-1",
		Repository: "team/web", Tag: "verified-main-1", Digest: rec.Digest, PushedAt: time.Date(2026, 11, 25, 11, 0, 0, 123_000_000, time.UTC)}}
	if !strings.HasPrefix(want.Push.EventID, "autodeploy-promote-") {
		t.Errorf("event id %q", want.Push.EventID)
	}
	l := &fakeLambda{}
	image := ecrtypes.Image{ImageManifest: aws.String("{}"), ImageManifestMediaType: aws.String("application/vnd.oci.image.manifest.v1+json")}
	p := &Promoter{ECR: func(string, string) ECR { return &fakeECR{images: []ecrtypes.Image{image}} }, Lambda: l,
		DeployerFunction: "deployer", Now: func() time.Time { return at }}
	for range 2 { // a repeated promotion hands off the same command
		if err := p.Promote(context.Background(), rec, "verified-main-1"); err != nil {
			t.Fatal(err)
		}
	}
	for i, payload := range l.payloads {
		got, err := work.DecodeCommand(payload)
		if err != nil {
			t.Fatalf("hand-off %d is not a command: %v\n%s", i+1, err, payload)
		}
		if diff := cmp.Diff(work.Command(want), got); diff != "" {
			t.Errorf("hand-off %d (-want +got):\n%s", i+1, diff)
		}
	}
	for _, other := range []struct {
		name string
		rec  history.Record
		tag  string
	}{
		{"another tag", rec, "verified-main-2"},
		{"another digest", func() history.Record { r := rec; r.Digest = "sha256:" + strings.Repeat("cd", 32); return r }(), "verified-main-1"},
		{"another rule", func() history.Record { r := rec; r.Rule = "web-other"; return r }(), "verified-main-1"},
	} {
		if id := HandOff(other.rec, other.tag, at).Push.EventID; id == want.Push.EventID {
			t.Errorf("%s: the same event id %s", other.name, id)
		}
	}
}

// A sweep request is a sweep command whose id says why; with no deployer
// function nothing is sent.
func TestRequestSweep(t *testing.T) {
	r := rec
	r.Cluster, r.Service, r.DeploymentID = "prod", "web", "ecs-svc/20"
	for _, tt := range []struct {
		name, function string
		want           []work.Command
	}{
		{"sends a sweep command", "deployer", []work.Command{work.Sweep{ID: "after-rollback-ecs-svc-20",
			Origin: "watcher, for rule web-staging on prod/web (deployment ecs-svc/20)"}}},
		{"no deployer function", "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &fakeLambda{}
			p := &Promoter{Lambda: l, DeployerFunction: tt.function, Now: time.Now}
			err := p.RequestSweep(context.Background(), r, "after-rollback-ecs-svc-20")
			if tt.function == "" && !errors.Is(err, ErrNoDeployer) {
				t.Fatalf("no deployer function: %v, want ErrNoDeployer (nothing was sent)", err)
			} else if tt.function != "" && err != nil {
				t.Fatal(err)
			}
			var got []work.Command
			for _, payload := range l.payloads {
				c, err := work.DecodeCommand(payload)
				if err != nil {
					t.Fatalf("%v\n%s", err, payload)
				}
				got = append(got, c)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPromoteThroughThePromoteRole: in a registry in another account the
// tag is written through its registry stack's promote role, not the read
// role the deployer lists images with (which may not write).
func TestPromoteThroughThePromoteRole(t *testing.T) {
	image := ecrtypes.Image{ImageManifest: aws.String(`{"schemaVersion":2}`), ImageManifestMediaType: aws.String("application/vnd.oci.image.manifest.v1+json")}
	for _, tt := range []struct {
		name    string
		central rules.Place
		want    string
	}{
		{"registry in the central account", rules.Place{Account: "123456789012", Region: "eu-west-1"}, "eu-west-1 "},
		{"registry in another account", rules.Place{Account: "111111111111", Region: "us-east-1"},
			"eu-west-1 arn:aws:iam::123456789012:role/ecr-autodeploy-promote-eu-west-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var asked []string
			p := &Promoter{Central: tt.central, ECR: func(region, role string) ECR {
				asked = append(asked, region+" "+role)
				return &fakeECR{images: []ecrtypes.Image{image}}
			}}
			if err := p.Promote(context.Background(), rec, "verified-main-1"); err != nil {
				t.Fatal(err)
			}
			if len(asked) != 1 || asked[0] != tt.want {
				t.Errorf("ECR asked as %q, want [%q]", asked, tt.want)
			}
		})
	}
}

// TestHandOffPush: a gate's hand-off is the push as it is (event id, tag,
// time) in a push command with its origin; without a deployer function it
// is an error, since nothing else would deploy the push. The Lambda client
// is a fake recording payloads, as in the tests above.
func TestHandOffPush(t *testing.T) {
	push := ecrevent.Push{EventID: "autodeploy-scan-0011223344556677", Account: "123456789012", Region: "eu-west-1",
		Time: time.Date(2026, 11, 25, 10, 0, 0, 250_000_000, time.UTC), Repository: "team/web", Tag: "v1.3.0", Digest: rec.Digest}
	for _, tt := range []struct {
		name, function, wantErr string
		want                    []work.Command
	}{
		{"sends the push for its rule", "deployer", "", []work.Command{work.DeployPush{Origin: "scan clean", Rule: "web-prod", Push: work.Push{
			EventID: push.EventID, RegistryAccount: "123456789012", RegistryRegion: "eu-west-1", Repository: "team/web",
			Tag: "v1.3.0", Digest: rec.Digest, PushedAt: push.Time}}}},
		{"no deployer function", "", "hand team/web:v1.3.0 (" + rec.Digest + ") to the deployer for rule web-prod: no deployer function configured", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &fakeLambda{}
			p := &Promoter{Lambda: l, DeployerFunction: tt.function, Now: time.Now}
			err := p.HandOffPush(context.Background(), push, "web-prod", "scan clean")
			if (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
				t.Fatalf("HandOffPush error = %v, want %q", err, tt.wantErr)
			}
			var got []work.Command
			for _, payload := range l.payloads {
				c, err := work.DecodeCommand(payload)
				if err != nil {
					t.Fatalf("%v\n%s", err, payload)
				}
				got = append(got, c)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
		})
	}
}
