package bluegreen_test

// These tests run against testenv.FakeCodeDeploy, a fake of the CodeDeploy
// client: moto has no BatchGetDeploymentGroups, no deployment that changes
// state and no DeploymentLimitExceededException. moto_test.go runs what
// moto has (applications, groups, CreateDeployment) against moto.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func fakeWithGroups() *testenv.FakeCodeDeploy {
	f := testenv.NewFakeCodeDeploy()
	f.AddApplication("web", types.ComputePlatformEcs)
	f.AddApplication("api", types.ComputePlatformEcs)
	f.AddApplication("legacy", types.ComputePlatformServer) // its groups are never read
	f.AddApplication("tools", types.ComputePlatformEcs)
	f.AddGroup("web", "web-staging", "staging", "web", true)
	f.AddGroup("web", "web-prod", "prod", "web", true)
	f.AddGroup("api", "api-prod", "prod", "api", true)
	f.AddGroup("tools", "bare", "prod", "bare", false) // no target group pair
	return f
}

func TestFindGroup(t *testing.T) {
	tests := []struct {
		name             string
		setup            func(*testenv.FakeCodeDeploy)
		cluster, service string
		cd               *rules.CodeDeploy
		want             bluegreen.Group
		wantErr          string
		permanent        bool
	}{
		{name: "named", cluster: "prod", service: "web", cd: &rules.CodeDeploy{Application: "web", DeploymentGroup: "web-prod"},
			want: bluegreen.Group{Application: "web", Name: "web-prod"}},
		{name: "discovered among pages of applications", cluster: "prod", service: "api", cd: &rules.CodeDeploy{},
			want: bluegreen.Group{Application: "api", Name: "api-prod"}},
		{name: "discovered without codedeploy settings", cluster: "staging", service: "web",
			want: bluegreen.Group{Application: "web", Name: "web-staging"}},
		{name: "named group deploys another service", cluster: "prod", service: "api", cd: &rules.CodeDeploy{Application: "web", DeploymentGroup: "web-prod"},
			wantErr: "deployment group web/web-prod deploys prod/web, not service prod/api", permanent: true},
		{name: "named group missing", cluster: "prod", service: "web", cd: &rules.CodeDeploy{Application: "web", DeploymentGroup: "nope"},
			wantErr: "deployment group web/nope named for service prod/web does not exist", permanent: true},
		{name: "named application missing", cluster: "prod", service: "web", cd: &rules.CodeDeploy{Application: "nope", DeploymentGroup: "web-prod"},
			wantErr: "deployment group nope/web-prod named for service prod/web does not exist", permanent: true},
		{name: "none found", cluster: "prod", service: "worker", cd: &rules.CodeDeploy{},
			wantErr: "no CodeDeploy deployment group deploys service prod/worker: searched the groups of 3 ECS application(s) (api, tools, web)", permanent: true},
		{name: "several found", cluster: "prod", service: "web", cd: &rules.CodeDeploy{},
			setup:   func(f *testenv.FakeCodeDeploy) { f.AddGroup("api", "web-too", "prod", "web", true) },
			wantErr: "2 CodeDeploy deployment groups deploy service prod/web (api/web-too, web/web-prod): name the one", permanent: true},
		{name: "group without load balancer info", cluster: "prod", service: "bare", cd: &rules.CodeDeploy{},
			wantErr: "deployment group tools/bare has no load balancer info", permanent: true},
		{name: "access denied", cluster: "prod", service: "web", cd: &rules.CodeDeploy{},
			setup: func(f *testenv.FakeCodeDeploy) {
				f.FailNext("ListApplications", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform codedeploy:ListApplications"})
			},
			wantErr: "find the deployment group of prod/web: list applications: api error AccessDeniedException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fakeWithGroups()
			if tt.setup != nil {
				tt.setup(f)
			}
			var groups bluegreen.Groups
			got, err := groups.Find(context.Background(), f, "eu-west-1|", tt.cluster, tt.service, tt.cd)
			if tt.wantErr != "" {
				var pe *bluegreen.PermanentError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if errors.As(err, &pe) != tt.permanent {
					t.Errorf("permanent = %v, want %v", !tt.permanent, tt.permanent)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Find = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestFindGroupCachesWhatItFound: the listing runs once per execution
// environment and service; a failure is not kept, so a group set up after
// it is found.
func TestFindGroupCachesWhatItFound(t *testing.T) {
	ctx := context.Background()
	f := fakeWithGroups()
	var groups bluegreen.Groups
	for range 3 {
		if _, err := groups.Find(ctx, f, "eu-west-1|", "prod", "api", &rules.CodeDeploy{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.Calls("ListApplications"); n != 2 { // two pages, once
		t.Errorf("ListApplications called %d times, want 2 (one listing of two pages)", n)
	}
	if _, err := groups.Find(ctx, f, "eu-west-1|", "prod", "late", &rules.CodeDeploy{}); err == nil {
		t.Fatal("found a group before one exists")
	}
	f.AddGroup("api", "late-prod", "prod", "late", true)
	got, err := groups.Find(ctx, f, "eu-west-1|", "prod", "late", &rules.CodeDeploy{})
	if err != nil || got.Name != "late-prod" {
		t.Fatalf("after the group was made: %v, %v", got, err)
	}
	// Another account or region is another cache entry.
	before := f.Calls("ListApplications")
	if _, err := groups.Find(ctx, f, "us-east-1|", "prod", "api", &rules.CodeDeploy{}); err != nil {
		t.Fatal(err)
	}
	if f.Calls("ListApplications") == before {
		t.Error("a group found in one region answered for another")
	}
}

// TestGroupsWithFindsAgain: a kept group that CodeDeploy says is gone (it
// was deleted and re-created under another name, the fake's doing; moto
// cannot delete one) is forgotten and found again, once, in the same call.
func TestGroupsWithFindsAgain(t *testing.T) {
	ctx := context.Background()
	f := fakeWithGroups()
	var groups bluegreen.Groups
	find := &rules.CodeDeploy{}
	var ran []string
	use := func(g bluegreen.Group) error {
		ran = append(ran, g.String())
		_, err := bluegreen.Active(ctx, f, g)
		return err
	}
	if _, err := groups.With(ctx, f, "eu-west-1|", "prod", "web", find, use); err != nil {
		t.Fatal(err)
	}
	f.DeleteGroup("web", "web-prod")
	f.AddGroup("web", "web-prod-2", "prod", "web", true)
	got, err := groups.With(ctx, f, "eu-west-1|", "prod", "web", find, use)
	if err != nil || got.Name != "web-prod-2" {
		t.Fatalf("With = %v, %v; want the re-created group", got, err)
	}
	if diff := cmp.Diff([]string{"web/web-prod", "web/web-prod", "web/web-prod-2"}, ran); diff != "" {
		t.Errorf("ran with (-want +got):\n%s", diff)
	}
	// The new group is kept.
	if g, err := groups.Find(ctx, f, "eu-west-1|", "prod", "web", find); err != nil || g.Name != "web-prod-2" {
		t.Errorf("kept %v, %v", g, err)
	}

	// Gone again on the second try: that error is returned, no third try.
	ran = nil
	stillGone := func(g bluegreen.Group) error {
		ran = append(ran, g.String())
		return &types.DeploymentGroupDoesNotExistException{Message: aws.String("No Deployment Group found")}
	}
	if _, err := groups.With(ctx, f, "eu-west-1|", "prod", "web", find, stillGone); !bluegreen.IsGroupMissing(err) || len(ran) != 2 {
		t.Errorf("err = %v after %d tries, want the missing group after 2", err, len(ran))
	}

	// Deleted and not re-created: finding it again says what was searched.
	f.DeleteGroup("web", "web-prod-2")
	_, err = groups.With(ctx, f, "eu-west-1|", "prod", "web", find, use)
	var pe *bluegreen.PermanentError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "no CodeDeploy deployment group deploys service prod/web") {
		t.Errorf("err = %v, want a permanent failure", err)
	}
}

func TestIsGroupMissing(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"group", fmt.Errorf("create deployment: %w", &types.DeploymentGroupDoesNotExistException{}), true},
		{"application", &types.ApplicationDoesNotExistException{}, true},
		{"by code only", &smithy.GenericAPIError{Code: "DeploymentGroupDoesNotExistException"}, true},
		{"the text is not enough", errors.New("DeploymentGroupDoesNotExistException"), false},
		{"another error", &types.DeploymentLimitExceededException{}, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		if got := bluegreen.IsGroupMissing(tt.err); got != tt.want {
			t.Errorf("%s: IsGroupMissing = %v, want %v", tt.name, got, tt.want)
		}
	}
}
