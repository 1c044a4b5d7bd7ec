package bluegreen

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const newTD = "arn:aws:ecs:eu-west-1:111111111111:task-definition/web:8"

func lb(container string, port int32) []ecstypes.LoadBalancer {
	return []ecstypes.LoadBalancer{{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:eu-west-1:111111111111:targetgroup/web-blue/1"),
		ContainerName: aws.String(container), ContainerPort: aws.Int32(port)}}
}

// TestBuildAppSpec holds the AppSpec of each kind of service to a golden
// file (go test ./internal/bluegreen -update rewrites them).
func TestBuildAppSpec(t *testing.T) {
	awsvpc := &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
		Subnets: []string{"subnet-0a", "subnet-0b"}, SecurityGroups: []string{"sg-0web"}, AssignPublicIp: ecstypes.AssignPublicIpDisabled}}
	tests := []struct {
		name  string
		svc   ecstypes.Service
		hooks []rules.Hook
	}{
		{"fargate-awsvpc", ecstypes.Service{ServiceName: aws.String("web"), LaunchType: ecstypes.LaunchTypeFargate,
			PlatformVersion: aws.String("1.4.0"), NetworkConfiguration: awsvpc, LoadBalancers: lb("app", 8080)}, nil},
		{"ec2-bridge", ecstypes.Service{ServiceName: aws.String("web"), LaunchType: ecstypes.LaunchTypeEc2,
			LoadBalancers: lb("nginx", 80)}, nil},
		{"capacity-providers", ecstypes.Service{ServiceName: aws.String("web"), NetworkConfiguration: awsvpc,
			PlatformVersion: aws.String("LATEST"), LoadBalancers: lb("app", 8080),
			CapacityProviderStrategy: []ecstypes.CapacityProviderStrategyItem{
				{CapacityProvider: aws.String("FARGATE"), Base: 1, Weight: 1},
				{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 3}}}, nil},
		{"hooks", ecstypes.Service{ServiceName: aws.String("web"), LoadBalancers: lb("app", 8080), NetworkConfiguration: awsvpc},
			[]rules.Hook{{Event: "BeforeInstall", Function: "web-prepare"},
				{Event: "AfterAllowTestTraffic", Function: "arn:aws:lambda:eu-west-1:111111111111:function:web-smoke:live"}}},
		// CodeDeploy's last deployment may have changed the network: the
		// primary task set's settings win over the service's.
		{"primary-task-set", ecstypes.Service{ServiceName: aws.String("web"), LoadBalancers: lb("app", 8080),
			NetworkConfiguration: awsvpc, PlatformVersion: aws.String("LATEST"),
			TaskSets: []ecstypes.TaskSet{
				{Status: aws.String("ACTIVE"), PlatformVersion: aws.String("1.3.0")},
				{Status: aws.String("PRIMARY"), PlatformVersion: aws.String("1.4.0"),
					NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
						Subnets: []string{"subnet-0c"}, SecurityGroups: []string{"sg-0new"}}}}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := BuildAppSpec(newTD, &tt.svc, tt.hooks)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(spec.Content))
			if spec.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("SHA256 %s is not the content's", spec.SHA256)
			}
			golden := filepath.Join("testdata", "appspec-"+tt.name+".json")
			if *update {
				if err := os.WriteFile(golden, []byte(spec.Content+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/bluegreen -update to write it)", err)
			}
			if d := cmp.Diff(strings.TrimSuffix(string(want), "\n"), spec.Content); d != "" {
				t.Errorf("%s differs (-golden +got); rerun with -update if intended:\n%s", golden, d)
			}
		})
	}
}

func TestBuildAppSpecRefuses(t *testing.T) {
	tests := []struct {
		name string
		svc  ecstypes.Service
		want string
	}{
		{"no load balancer", ecstypes.Service{ServiceName: aws.String("web")}, "service web has no load balancer"},
		{"no container port", ecstypes.Service{ServiceName: aws.String("web"), LoadBalancers: []ecstypes.LoadBalancer{{TargetGroupArn: aws.String("tg")}}},
			"names no container and port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BuildAppSpec(newTD, &tt.svc, nil)
			var pe *PermanentError
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a permanent error containing %q", err, tt.want)
			}
		})
	}
}
