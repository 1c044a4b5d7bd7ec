package bluegreen_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
)

var webProd = bluegreen.Group{Application: "web", Name: "web-prod"}

func spec() bluegreen.AppSpec {
	return bluegreen.AppSpec{Content: `{"version": 0.0, "Resources": [{"TargetService": {"Properties": {"TaskDefinition": "web:2"}}}]}`, SHA256: "abc"}
}

func TestStart(t *testing.T) {
	ctx := context.Background()
	f := fakeWithGroups()
	marker := bluegreen.Marker("event-1", "web-prod")
	started, err := bluegreen.Start(ctx, f, webProd, spec(), marker)
	id := started.ID
	if err != nil || started != (bluegreen.Started{ID: "d-FAKE00001", TaskDefinition: "web:2"}) {
		t.Fatalf("Start = %+v, %v", started, err)
	}
	d := f.Deployments()[0]
	rev := d.Revision
	if rev.RevisionType != types.RevisionLocationTypeAppSpecContent || aws.ToString(rev.AppSpecContent.Content) != spec().Content ||
		aws.ToString(rev.AppSpecContent.Sha256) != "abc" || aws.ToString(d.Description) != marker {
		t.Errorf("created %+v", d)
	}

	// A retry of the same event while its deployment runs: the group is
	// busy with this very deployment, which is returned, not a new one.
	again, err := bluegreen.Start(ctx, f, webProd, spec(), marker)
	if err != nil || again != started {
		t.Fatalf("retry = %+v, %v; want %+v", again, err, started)
	}

	// Another event while it runs: transient, retried later.
	_, err = bluegreen.Start(ctx, f, webProd, spec(), bluegreen.Marker("event-2", "web-prod"))
	if !bluegreen.IsActiveDeployment(err) || !strings.Contains(err.Error(), "deployment group web/web-prod already has an active deployment") {
		t.Fatalf("err = %v, want an active deployment error", err)
	}
	var limit *types.DeploymentLimitExceededException
	if !errors.As(err, &limit) {
		t.Error("the active deployment error does not unwrap to CodeDeploy's")
	}

	// Once it ended, the next event deploys.
	f.End(id, types.DeploymentStatusSucceeded, "", "")
	if next, err := bluegreen.Start(ctx, f, webProd, spec(), bluegreen.Marker("event-2", "web-prod")); err != nil || next.ID == id {
		t.Fatalf("after the first ended: %+v, %v", next, err)
	}
	if n := len(f.Deployments()); n != 2 {
		t.Errorf("%d deployments, want 2", n)
	}
}

// TestStartLostAnswer: CreateDeployment was applied but its answer lost;
// the retry (Lambda's) finds the deployment by its marker.
func TestStartLostAnswer(t *testing.T) {
	ctx := context.Background()
	f := fakeWithGroups()
	f.LoseCreate = 1
	marker := bluegreen.Marker("event-1", "web-prod")
	if _, err := bluegreen.Start(ctx, f, webProd, spec(), marker); err == nil {
		t.Fatal("the lost answer was not an error")
	}
	got, err := bluegreen.Start(ctx, f, webProd, spec(), marker)
	if err != nil || got.ID != "d-FAKE00001" || got.TaskDefinition != "web:2" || len(f.Deployments()) != 1 {
		t.Fatalf("retry = %+v, %v with %d deployments; want the first one", got, err, len(f.Deployments()))
	}
}

// TestStartFindsDeploymentOfAnOlderVersion: a deployment an older version
// made for this event and rule (its description names no digest) is still
// this deploy's own.
func TestStartFindsDeploymentOfAnOlderVersion(t *testing.T) {
	ctx := context.Background()
	f := fakeWithGroups()
	f.LoseCreate = 1
	if _, err := bluegreen.Start(ctx, f, webProd, spec(), bluegreen.Marker("event-1", "web-prod")); err == nil {
		t.Fatal("the lost answer was not an error")
	}
	marker := bluegreen.Mark{Event: "event-1", Rule: "web-prod", Digest: "sha256:abc"}.String()
	got, err := bluegreen.Start(ctx, f, webProd, spec(), marker)
	if err != nil || got.ID != "d-FAKE00001" || len(f.Deployments()) != 1 {
		t.Fatalf("retry = %+v, %v with %d deployments; want the first one", got, err, len(f.Deployments()))
	}
}

func TestActive(t *testing.T) {
	ctx := context.Background()
	f := fakeWithGroups()
	if got, err := bluegreen.Active(ctx, f, webProd); err != nil || len(got) != 0 {
		t.Fatalf("Active = %+v, %v; want none", got, err)
	}
	ended, _ := bluegreen.Start(ctx, f, webProd, spec(), "by hand")
	f.End(ended.ID, types.DeploymentStatusSucceeded, "", "")
	mark := bluegreen.Mark{Event: "event-1", Rule: "web-prod", Digest: "sha256:abc"}
	running, err := bluegreen.Start(ctx, f, webProd, spec(), mark.String())
	if err != nil {
		t.Fatal(err)
	}
	got, err := bluegreen.Active(ctx, f, webProd)
	want := []bluegreen.Deployment{{ID: running.ID, Description: mark.String(), Mark: mark, Marked: true, TaskDefinition: "web:2"}}
	if diff := cmp.Diff(want, got); diff != "" || err != nil {
		t.Errorf("Active: %v (-want +got):\n%s", err, diff)
	}
	// A group that is gone says so, for Groups.With to find it again.
	if _, err := bluegreen.Active(ctx, f, bluegreen.Group{Application: "web", Name: "gone"}); !bluegreen.IsGroupMissing(err) {
		t.Errorf("missing group: %v", err)
	}
}

func TestStartFailures(t *testing.T) {
	ctx := context.Background()
	f := fakeWithGroups()
	f.FailNext("CreateDeployment", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform codedeploy:CreateDeployment"})
	_, err := bluegreen.Start(ctx, f, webProd, spec(), "m")
	if err == nil || !strings.Contains(err.Error(), "create deployment in web/web-prod: api error AccessDeniedException") || bluegreen.IsActiveDeployment(err) {
		t.Fatalf("err = %v", err)
	}
	// The group is busy and looking for our own deployment fails: still
	// transient (the retry looks again).
	if _, err := bluegreen.Start(ctx, f, webProd, spec(), "m"); err != nil {
		t.Fatal(err)
	}
	f.FailNext("ListDeployments", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"})
	_, err = bluegreen.Start(ctx, f, webProd, spec(), "other")
	if !bluegreen.IsActiveDeployment(err) || !strings.Contains(err.Error(), "ThrottlingException") {
		t.Fatalf("err = %v", err)
	}
}

func TestEnded(t *testing.T) {
	ctx := context.Background()
	f := fakeWithGroups()
	start := func(marker string) string {
		s, err := bluegreen.Start(ctx, f, webProd, spec(), marker)
		if err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	ok := start("a")
	f.End(ok, types.DeploymentStatusSucceeded, "", "")
	bad := start("b")
	f.End(bad, types.DeploymentStatusFailed, "The ECS service cannot be updated due to an unexpected error", "d-ROLLBACK1")
	failed := start("c")
	f.End(failed, types.DeploymentStatusFailed, "hook BeforeAllowTraffic failed", "")
	tests := []struct {
		id   string
		want bluegreen.Ending
	}{
		{ok, bluegreen.Ending{}},
		{bad, bluegreen.Ending{RolledBack: true, Reason: "ECS_UPDATE_ERROR: The ECS service cannot be updated due to an unexpected error; rolled back by deployment d-ROLLBACK1 (Automatic rollback triggered by a failed deployment)"}},
		{failed, bluegreen.Ending{Reason: "ECS_UPDATE_ERROR: hook BeforeAllowTraffic failed"}},
	}
	for _, tt := range tests {
		got, err := bluegreen.Ended(ctx, f, tt.id)
		if err != nil || got != tt.want {
			t.Errorf("Ended(%s) = %+v, %v; want %+v", tt.id, got, err, tt.want)
		}
	}
	if _, err := bluegreen.Ended(ctx, f, "d-NOPE"); err == nil {
		t.Error("an unknown deployment ended")
	}
}
