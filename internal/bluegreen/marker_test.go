package bluegreen_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
)

func TestMark(t *testing.T) {
	tests := []struct {
		name, description string
		want              bluegreen.Mark
		ok                bool
	}{
		{"with digest", "ecr-autodeploy event=evt-1 rule=web-prod digest=sha256:abc",
			bluegreen.Mark{Event: "evt-1", Rule: "web-prod", Digest: "sha256:abc"}, true},
		{"made by an older version", "ecr-autodeploy event=reconcile-0123456789ab rule=web-prod",
			bluegreen.Mark{Event: "reconcile-0123456789ab", Rule: "web-prod"}, true},
		{"started by hand", "hotfix for INC-42", bluegreen.Mark{}, false},
		{"no rule", "ecr-autodeploy event=evt-1", bluegreen.Mark{}, false},
		{"empty", "", bluegreen.Mark{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := bluegreen.ParseMark(tt.description)
			if diff := cmp.Diff(tt.want, got); diff != "" || ok != tt.ok {
				t.Errorf("ParseMark(%q) ok=%v (-want +got):\n%s", tt.description, ok, diff)
			}
			if ok && got.String() != tt.description {
				t.Errorf("String() = %q, want %q", got.String(), tt.description)
			}
		})
	}
	if got := bluegreen.Marker("evt-1", "rollback"); got != "ecr-autodeploy event=evt-1 rule=rollback" {
		t.Errorf("Marker = %q", got)
	}
}
