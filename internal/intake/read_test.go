package intake

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	if strings.HasPrefix(name, "events/") {
		return testenv.Event(t, strings.TrimPrefix(name, "events/"))
	}
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

const sampleDigest = "sha256:15794219de6dc381cac7805b3e96683d02e81b9cb72265b5cb8c1f501c21d71c"

// Every payload the deployer may be given, and what it is routed to; what
// it does not take is a permanent *work.Error that says why.
func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       Request // Event is compared as "the payload itself"
		wantErr    string
	}{
		{name: "the schedule's event", file: "events/scheduled-reconcile.json",
			want: Request{Sweep: &reconcile.Options{EventID: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"}, From: "the schedule's event"}},
		{name: "a sweep command", file: "command-sweep.json", want: Request{Sweep: &reconcile.Options{EventID: "after-rollback-ecs-svc-20"},
			Command: work.KindSweep, From: "watcher, for rule web-prod on prod/web (deployment ecs-svc/20)"}},
		{name: "a dry-run sweep command", file: "command-sweep-dry-run.json", want: Request{Sweep: &reconcile.Options{EventID: "operator-check", DryRun: true},
			Command: work.KindSweep, From: "an operator, by hand"}},
		{name: "a push command", file: "command-push.json", want: Request{Push: &work.DeployPush{
			Origin: "promotion of rule web-staging to tag verified-main-4f2a9c1",
			Push: work.Push{EventID: "autodeploy-promote-5d41402abc4b2a76", RegistryAccount: "123456789012", RegistryRegion: "eu-west-1",
				Repository: "web", Tag: "verified-main-4f2a9c1", Digest: sampleDigest,
				PushedAt: time.Date(2026, 11, 25, 10, 12, 31, 777_000_000, time.UTC)}},
			Command: work.KindPush, From: "promotion of rule web-staging to tag verified-main-4f2a9c1"}},
		{name: "an ECR push event", file: "events/ecr-push-main.json", want: Request{From: "ECR event"}},
		// Handle ignores it (action-type DELETE), as it does today.
		{name: "an ECR delete event", file: "events/ecr-delete.json", want: Request{From: "ECR event"}},
		{name: "a worker's item", file: "command-deploy-target.json", wantErr: "a deploy-target command is not the deployer's"},
		{name: "a worker's cleanup", file: "command-cleanup.json", wantErr: "a cleanup command is not the deployer's"},
		{name: "a newer writer's push", file: "command-push-v2.json", wantErr: "command push version 2 is not known to this build (it reads 1)"},
		{name: "a kind this build does not know", file: "command-approve.json", wantErr: `unknown command kind "approve" (version 1)`},
		{name: "an ECS event", file: "events/ecs-deployment-completed.json",
			wantErr: `an event (source "aws.ecs", detail-type "ECS Deployment State Change", id "`},
		{name: "a CodeDeploy event", file: "events/codedeploy-success.json", wantErr: `source "aws.codedeploy"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := fixture(t, tc.file)
			got, err := Read(raw)
			if tc.wantErr != "" {
				var we *work.Error
				if !errors.As(err, &we) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want a *work.Error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Sweep == nil && tc.want.Push == nil {
				tc.want.Event = raw
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("read (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadRefusesWhatIsNeither(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `deploy web please`, "payload is not a JSON object"},
		{"a JSON array", `[1, 2]`, "payload is not a JSON object"},
		{"an empty object", `{}`, "neither a command (no kind) nor an AWS event (no source and detail-type)"},
		{"an incomplete command", `{"kind":"push","v":1,"origin":"x"}`, "incomplete push command"},
		{"a kind of the wrong type", `{"kind":7,"source":"aws.ecr"}`, `an event (source "aws.ecr", detail-type "", id "") the deployer does not take`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(json.RawMessage(tc.body))
			var we *work.Error
			if !errors.As(err, &we) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want a *work.Error saying %q", err, tc.want)
			}
		})
	}
}

// Fuzz: Read never panics, and what it takes is exactly one thing.
func FuzzRead(f *testing.F) {
	for _, name := range []string{"command-push.json", "command-sweep.json", "command-deploy-target.json", "command-approve.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"source":"aws.events","detail-type":"Scheduled Event","id":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := Read(data)
		if err != nil {
			var we *work.Error
			if !errors.As(err, &we) {
				t.Fatalf("error %v is not a *work.Error", err)
			}
			return
		}
		set := 0
		for _, ok := range []bool{req.Sweep != nil, req.Push != nil, req.Event != nil} {
			if ok {
				set++
			}
		}
		if set != 1 {
			t.Fatalf("%d routes for %s: %+v", set, data, req)
		}
	})
}
