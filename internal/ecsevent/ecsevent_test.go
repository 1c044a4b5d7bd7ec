package ecsevent

import (
	"strings"
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func TestParseSamples(t *testing.T) {
	tests := []struct {
		file, name, deployment string
		rollbackTo             string
	}{
		{"ecs-deployment-completed.json", Completed, "ecs-svc/1111111111111111111", ""},
		{"ecs-deployment-failed.json", Failed, "ecs-svc/1111111111111111111", ""},
		{"ecs-deployment-in-progress.json", InProgress, "ecs-svc/1111111111111111111", ""},
		{"ecs-deployment-rollback.json", InProgress, "ecs-svc/2222222222222222222", "ecs-svc/0000000000000000000"},
	}
	for _, tt := range tests {
		d, err := Parse(testenv.Event(t, tt.file))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if d.EventName != tt.name || d.DeploymentID != tt.deployment || d.Service.Cluster != "staging" || d.Service.Name != "web" {
			t.Errorf("%s: %+v", tt.file, d)
		}
		to, ok := d.RollingBackTo()
		if to != tt.rollbackTo || ok != (tt.rollbackTo != "") {
			t.Errorf("%s: RollingBackTo = %q, %v", tt.file, to, ok)
		}
		if d.When().IsZero() || d.When().Nanosecond() == 0 {
			t.Errorf("%s: When = %s, want updatedAt", tt.file, d.When())
		}
	}
}

func TestParseRejects(t *testing.T) {
	valid := string(testenv.Event(t, "ecs-deployment-completed.json"))
	for _, tt := range []struct{ name, data, want string }{
		{"not json", "{", "malformed ECS event"},
		{"ecr event", string(testenv.Event(t, "ecr-push-main.json")), "not an ECS Deployment State Change event"},
		{"no resources", strings.Replace(valid, `"resources": [`, `"resources": [], "x": [`, 1), "no service in resources"},
		{"cluster ARN", strings.Replace(valid, "service/staging/web", "cluster/staging", 1), "is not a service ARN with its cluster"},
		{"no deployment id", strings.Replace(valid, `"deploymentId": "ecs-svc/1111111111111111111"`, `"deploymentId": ""`, 1), "missing detail.deploymentId"},
	} {
		if _, err := Parse([]byte(tt.data)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"ecs-deployment-completed.json", "ecs-deployment-rollback.json"} {
		f.Add(testenv.Event(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err == nil && (d.DeploymentID == "" || d.Service.Name == "") {
			t.Fatalf("accepted %+v", d)
		}
	})
}
