package deploy_test

import (
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
)

// The deploy path tells a sweep's deploys by their event id, which the
// sweep makes: the two must agree, or a sweep would open rollouts again.
func TestIsSweepKnowsTheSweepsEventIDs(t *testing.T) {
	for _, tt := range []struct {
		id    string
		sweep bool
	}{
		{reconcile.EventID("sha256:4a5c0e1f9b2d3c4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8091a2b3c4d5"), true},
		{"0f6a1e3c-3b7e-4a7d-9f39-2f1c2b0e9d11", false}, // an ECR event
		{"autodeploy-promote-0123456789abcdef", false},  // a promotion's push command
	} {
		if got := deploy.IsSweep(tt.id); got != tt.sweep {
			t.Errorf("IsSweep(%q) = %v, want %v", tt.id, got, tt.sweep)
		}
	}
}
