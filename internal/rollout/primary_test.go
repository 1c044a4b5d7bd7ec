package rollout

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestPrimaryDeployment: the PRIMARY deployment running the revision wins,
// else the first PRIMARY one; ACTIVE deployments and no service give none.
func TestPrimaryDeployment(t *testing.T) {
	dep := func(id, status, td string) types.Deployment {
		return types.Deployment{Id: aws.String(id), Status: aws.String(status), TaskDefinition: aws.String(td)}
	}
	for _, tt := range []struct {
		name string
		svc  *types.Service
		want string
	}{
		{"no service", nil, ""},
		{"no deployments", &types.Service{}, ""},
		{"the primary running it", &types.Service{Deployments: []types.Deployment{
			dep("ecs-svc/1", "PRIMARY", "web:1"), dep("ecs-svc/2", "PRIMARY", "web:2"), dep("ecs-svc/0", "ACTIVE", "web:2"),
		}}, "ecs-svc/2"},
		{"else the first primary", &types.Service{Deployments: []types.Deployment{
			dep("ecs-svc/0", "ACTIVE", "web:2"), dep("ecs-svc/1", "PRIMARY", "web:1"), dep("ecs-svc/3", "PRIMARY", "web:3"),
		}}, "ecs-svc/1"},
		{"only active ones", &types.Service{Deployments: []types.Deployment{dep("ecs-svc/0", "ACTIVE", "web:2")}}, ""},
	} {
		if got := PrimaryDeployment(tt.svc, "web:2"); got != tt.want {
			t.Errorf("%s: PrimaryDeployment = %q, want %q", tt.name, got, tt.want)
		}
	}
}
