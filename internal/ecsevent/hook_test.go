package ecsevent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// The sample is the ECS Developer Guide's own example (see Hook).
func TestParseHookSample(t *testing.T) {
	h, err := ParseHook(testenv.Event(t, "ecs-hook-state-change.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Hook{
		EventID: "3329f79b-3dca-07f8-b1c2-5fe99f0b5e87", Time: time.Date(2026, 3, 5, 15, 54, 41, 0, time.UTC),
		Account: "123456789012", Region: "us-west-2",
		Service:              ecsarn.ARN{Partition: "aws", Region: "us-west-2", Account: "123456789012", Kind: "service", Cluster: "my-cluster", Name: "my-service"},
		ServiceARN:           "arn:aws:ecs:us-west-2:123456789012:service/my-cluster/my-service",
		ClusterARN:           "arn:aws:ecs:us-west-2:123456789012:cluster/my-cluster",
		ServiceDeploymentARN: "arn:aws:ecs:us-west-2:123456789012:service-deployment/my-cluster/my-service/0EYSiB0qap8xf0N76FsbE",
		EventType:            "INFO", EventName: HookAwaitingAction, HookID: "ecs-pause-e7tK9G_WRJqNF_EOMjztDXfKenlJuEUVjsNStf4WLKw",
		HookType: "PAUSE", LifecycleStage: "POST_TEST_TRAFFIC_SHIFT",
		ExpiresAt: time.Date(2026, 3, 5, 16, 4, 41, 0, time.UTC), UpdatedAt: time.Date(2026, 3, 5, 15, 54, 41, 618059641, time.UTC),
	}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("ParseHook (-want +got):\n%s", diff)
	}
	if !h.AwaitsAction() || h.Ended() || !h.When().Equal(want.UpdatedAt) {
		t.Errorf("AwaitsAction %v, Ended %v, When %s", h.AwaitsAction(), h.Ended(), h.When())
	}
}

func TestParseHookVariants(t *testing.T) {
	sample := string(testenv.Event(t, "ecs-hook-state-change.json"))
	sdARN := "arn:aws:ecs:us-west-2:123456789012:service-deployment/my-cluster/my-service/0EYSiB0qap8xf0N76FsbE"
	tests := []struct {
		name, data        string
		wantName, wantARN string
		ended             bool
	}{
		// The pause-hooks page's sample has no resources.
		{"no resources", strings.Replace(sample, `"resources": [`, `"x": [`, 1), HookAwaitingAction, sdARN, false},
		{"arn only in resources", strings.Replace(sample, `"serviceDeploymentArn": "`+sdARN+`"`, `"serviceDeploymentArn": ""`, 1), HookAwaitingAction, sdARN, false},
		{"timed out", strings.Replace(sample, HookAwaitingAction, HookTimedOut, 1), HookTimedOut, sdARN, true},
		{"failed", strings.Replace(sample, HookAwaitingAction, HookFailed, 1), HookFailed, sdARN, true},
		{"succeeded", strings.Replace(sample, HookAwaitingAction, HookSucceeded, 1), HookSucceeded, sdARN, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHook([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if h.EventName != tt.wantName || h.ServiceDeploymentARN != tt.wantARN || h.Ended() != tt.ended {
				t.Errorf("got %s %s ended=%v", h.EventName, h.ServiceDeploymentARN, h.Ended())
			}
		})
	}
}

func TestParseHookRejects(t *testing.T) {
	valid := string(testenv.Event(t, "ecs-hook-state-change.json"))
	noARN := strings.Replace(strings.Replace(valid, `"resources": [`, `"x": [`, 1),
		`"serviceDeploymentArn": "arn:aws:ecs:us-west-2:123456789012:service-deployment/my-cluster/my-service/0EYSiB0qap8xf0N76FsbE"`, `"serviceDeploymentArn": ""`, 1)
	for _, tt := range []struct{ name, data, want string }{
		{"not json", "{", "malformed ECS hook event"},
		{"deployment event", string(testenv.Event(t, "ecs-deployment-completed.json")), "not an ECS Hook State Change event"},
		{"cluster as service", strings.Replace(valid, `"serviceArn": "arn:aws:ecs:us-west-2:123456789012:service/my-cluster/my-service"`, `"serviceArn": "arn:aws:ecs:us-west-2:123456789012:cluster/my-cluster"`, 1), "is not a service ARN with its cluster"},
		{"no service deployment", noARN, "no service deployment ARN"},
		{"no hook id", strings.Replace(valid, `"hookId": "ecs-pause-e7tK9G_WRJqNF_EOMjztDXfKenlJuEUVjsNStf4WLKw"`, `"hookId": ""`, 1), "missing detail.eventName or detail.hookId"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseHook([]byte(tt.data)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzParseHook(f *testing.F) {
	f.Add(testenv.Event(f, "ecs-hook-state-change.json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHook(data)
		if err == nil && (h.HookID == "" || h.Service.Name == "" || h.ServiceDeploymentARN == "") {
			t.Fatalf("accepted %+v", h)
		}
	})
}
