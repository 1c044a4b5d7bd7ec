package codedeployevent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseSamples(t *testing.T) {
	for _, tt := range []struct{ file, state string }{
		{"codedeploy-start.json", Start}, {"codedeploy-ready.json", Ready}, {"codedeploy-success.json", Success},
		{"codedeploy-failure.json", Failure}, {"codedeploy-stop.json", Stop},
	} {
		data, err := os.ReadFile(filepath.Join("..", "..", "events", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		want := Deployment{EventID: got.EventID, Time: got.Time, Account: "123456789012", Region: "eu-west-1",
			Application: "web", DeploymentGroup: "web-prod", DeploymentID: "d-7Q3KX1ABC", State: tt.state}
		if diff := cmp.Diff(want, got); diff != "" || got.EventID == "" || got.Time.Before(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s (-want +got):\n%s", tt.file, diff)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"not json", "{", "malformed CodeDeploy event"},
		{"ecs event", `{"source":"aws.ecs","detail-type":"ECS Deployment State Change"}`, `not a CodeDeploy Deployment State-change Notification event: source "aws.ecs"`},
		{"instance event", `{"source":"aws.codedeploy","detail-type":"CodeDeploy Instance State-change Notification"}`, "not a CodeDeploy Deployment State-change Notification event"},
		{"no deployment id", `{"id":"e1","source":"aws.codedeploy","detail-type":"CodeDeploy Deployment State-change Notification","detail":{"state":"SUCCESS"}}`, "malformed CodeDeploy event e1: missing detail.deploymentId"},
	}
	for _, tt := range tests {
		if _, err := Parse([]byte(tt.data)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"codedeploy-success.json", "codedeploy-failure.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "events", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err == nil && (d.DeploymentID == "" || d.State == "") {
			t.Fatalf("accepted %+v", d)
		}
	})
}
