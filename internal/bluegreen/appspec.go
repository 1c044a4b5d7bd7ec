// Package bluegreen deploys blue/green ECS services (the CODE_DEPLOY
// deployment controller) through CodeDeploy: it builds the AppSpec of a new
// task definition, finds the deployment group that deploys a service, starts
// the deployment and, for the watcher, tells how one ended.
package bluegreen

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// AppSpec is the revision CodeDeploy deploys: its content and SHA-256.
type AppSpec struct {
	Content string
	SHA256  string
}

// TaskDefinition is the task definition the AppSpec deploys ("" if it
// cannot be read).
func (a AppSpec) TaskDefinition() string {
	var doc appSpecDoc
	if json.Unmarshal([]byte(a.Content), &doc) != nil || len(doc.Resources) == 0 {
		return ""
	}
	return doc.Resources[0]["TargetService"].Properties.TaskDefinition
}

// The AppSpec's JSON form, fields in the order AWS documents them.
type appSpecDoc struct {
	Version   json.RawMessage            `json:"version"`
	Resources []map[string]targetService `json:"Resources"`
	Hooks     []map[string]string        `json:"Hooks,omitempty"`
}

type targetService struct {
	Type       string     `json:"Type"`
	Properties properties `json:"Properties"`
}

type properties struct {
	TaskDefinition           string                `json:"TaskDefinition"`
	LoadBalancerInfo         loadBalancerInfo      `json:"LoadBalancerInfo"`
	PlatformVersion          string                `json:"PlatformVersion,omitempty"`
	NetworkConfiguration     *networkConfiguration `json:"NetworkConfiguration,omitempty"`
	CapacityProviderStrategy []capacityProvider    `json:"CapacityProviderStrategy,omitempty"`
}

type loadBalancerInfo struct {
	ContainerName string `json:"ContainerName"`
	ContainerPort int32  `json:"ContainerPort"`
}

type networkConfiguration struct {
	AwsvpcConfiguration awsvpcConfiguration `json:"AwsvpcConfiguration"`
}

type awsvpcConfiguration struct {
	Subnets        []string `json:"Subnets"`
	SecurityGroups []string `json:"SecurityGroups,omitempty"`
	AssignPublicIp string   `json:"AssignPublicIp,omitempty"`
}

type capacityProvider struct {
	Base             int32  `json:"Base"`
	CapacityProvider string `json:"CapacityProvider"`
	Weight           int32  `json:"Weight"`
}

// BuildAppSpec is the AppSpec that deploys taskDefinition to svc: the
// container and port its load balancer sends traffic to, and its platform
// version, network configuration and capacity provider strategy where set
// (the primary task set's, which CodeDeploy last deployed, else the
// service's), so the deployment changes nothing but the task definition.
func BuildAppSpec(taskDefinition string, svc *ecstypes.Service, hooks []rules.Hook) (AppSpec, error) {
	name := aws.ToString(svc.ServiceName)
	if len(svc.LoadBalancers) == 0 {
		return AppSpec{}, Permanent("service %s has no load balancer: a blue/green deployment shifts traffic between two target groups behind one", name)
	}
	lb := svc.LoadBalancers[0]
	if aws.ToString(lb.ContainerName) == "" || aws.ToInt32(lb.ContainerPort) == 0 {
		return AppSpec{}, Permanent("service %s's load balancer names no container and port", name)
	}
	p := properties{
		TaskDefinition:   taskDefinition,
		LoadBalancerInfo: loadBalancerInfo{ContainerName: aws.ToString(lb.ContainerName), ContainerPort: aws.ToInt32(lb.ContainerPort)},
		PlatformVersion:  aws.ToString(svc.PlatformVersion),
	}
	network, strategy := svc.NetworkConfiguration, svc.CapacityProviderStrategy
	if ts := primaryTaskSet(svc); ts != nil {
		p.PlatformVersion = cmp.Or(aws.ToString(ts.PlatformVersion), p.PlatformVersion)
		if ts.NetworkConfiguration != nil {
			network = ts.NetworkConfiguration
		}
		if len(ts.CapacityProviderStrategy) > 0 {
			strategy = ts.CapacityProviderStrategy
		}
	}
	if network != nil && network.AwsvpcConfiguration != nil {
		vpc := network.AwsvpcConfiguration
		p.NetworkConfiguration = &networkConfiguration{AwsvpcConfiguration: awsvpcConfiguration{
			Subnets: vpc.Subnets, SecurityGroups: vpc.SecurityGroups, AssignPublicIp: string(vpc.AssignPublicIp),
		}}
	}
	for _, s := range strategy {
		p.CapacityProviderStrategy = append(p.CapacityProviderStrategy, capacityProvider{
			Base: s.Base, CapacityProvider: aws.ToString(s.CapacityProvider), Weight: s.Weight,
		})
	}
	doc := appSpecDoc{
		Version:   json.RawMessage("0.0"),
		Resources: []map[string]targetService{{"TargetService": {Type: "AWS::ECS::Service", Properties: p}}},
	}
	for _, h := range hooks {
		doc.Hooks = append(doc.Hooks, map[string]string{h.Event: h.Function})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // content people read in plans and the console
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return AppSpec{}, fmt.Errorf("encode AppSpec: %w", err)
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	sum := sha256.Sum256(data)
	return AppSpec{Content: string(data), SHA256: hex.EncodeToString(sum[:])}, nil
}

// primaryTaskSet is the task set serving production traffic, if listed.
func primaryTaskSet(svc *ecstypes.Service) *ecstypes.TaskSet {
	for i := range svc.TaskSets {
		if aws.ToString(svc.TaskSets[i].Status) == "PRIMARY" {
			return &svc.TaskSets[i]
		}
	}
	return nil
}

// RunningTaskDefinition is the task definition a blue/green service runs:
// the service's, else its primary task set's.
func RunningTaskDefinition(svc *ecstypes.Service) string {
	if td := aws.ToString(svc.TaskDefinition); td != "" {
		return td
	}
	if ts := primaryTaskSet(svc); ts != nil {
		return aws.ToString(ts.TaskDefinition)
	}
	return ""
}
