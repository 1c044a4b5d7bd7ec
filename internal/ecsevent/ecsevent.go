// Package ecsevent reads EventBridge "ECS Deployment State Change" events,
// which aws-lambda-go has no type for.
package ecsevent

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
)

// Event names ECS sends for a service deployment.
const (
	InProgress = "SERVICE_DEPLOYMENT_IN_PROGRESS"
	Completed  = "SERVICE_DEPLOYMENT_COMPLETED"
	Failed     = "SERVICE_DEPLOYMENT_FAILED"
)

// Deployment is one deployment state change.
type Deployment struct {
	EventID      string
	Time         time.Time
	Service      ecsarn.ARN // from resources[0]
	ServiceARN   string
	EventType    string // INFO or ERROR
	EventName    string
	DeploymentID string
	UpdatedAt    time.Time
	Reason       string
}

type raw struct {
	ID         string    `json:"id"`
	Source     string    `json:"source"`
	DetailType string    `json:"detail-type"`
	Time       time.Time `json:"time"`
	Resources  []string  `json:"resources"`
	Detail     struct {
		EventType    string    `json:"eventType"`
		EventName    string    `json:"eventName"`
		DeploymentID string    `json:"deploymentId"`
		UpdatedAt    time.Time `json:"updatedAt"`
		Reason       string    `json:"reason"`
	} `json:"detail"`
}

// Parse reads one event; anything else is an error that says what is wrong.
func Parse(data []byte) (Deployment, error) {
	var r raw
	if err := json.Unmarshal(data, &r); err != nil {
		return Deployment{}, fmt.Errorf("malformed ECS event: %w", err)
	}
	if r.Source != "aws.ecs" || r.DetailType != "ECS Deployment State Change" {
		return Deployment{}, fmt.Errorf("not an ECS Deployment State Change event: source %q, detail-type %q", r.Source, r.DetailType)
	}
	if len(r.Resources) == 0 {
		return Deployment{}, fmt.Errorf("malformed ECS event %s: no service in resources", r.ID)
	}
	svc, err := ecsarn.Parse(r.Resources[0])
	if err != nil || svc.Kind != "service" || svc.Cluster == "" {
		return Deployment{}, fmt.Errorf("malformed ECS event %s: resources[0] %q is not a service ARN with its cluster", r.ID, r.Resources[0])
	}
	if r.Detail.DeploymentID == "" || r.Detail.EventName == "" {
		return Deployment{}, fmt.Errorf("malformed ECS event %s: missing detail.deploymentId or detail.eventName", r.ID)
	}
	return Deployment{
		EventID: r.ID, Time: r.Time, Service: svc, ServiceARN: r.Resources[0],
		EventType: r.Detail.EventType, EventName: r.Detail.EventName, DeploymentID: r.Detail.DeploymentID,
		UpdatedAt: r.Detail.UpdatedAt, Reason: r.Detail.Reason,
	}, nil
}

var rollbackRE = regexp.MustCompile(`circuit breaker: rolling back to deploymentId ([A-Za-z0-9/_-]+[A-Za-z0-9])`)

// RollingBackTo returns the deployment a circuit-breaker rollback returns
// to, when this in-progress event is one.
func (d Deployment) RollingBackTo() (string, bool) {
	if d.EventName != InProgress {
		return "", false
	}
	m := rollbackRE.FindStringSubmatch(d.Reason)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// When is the best time of the change: ECS's updatedAt, else the event's.
func (d Deployment) When() time.Time {
	if !d.UpdatedAt.IsZero() {
		return d.UpdatedAt
	}
	return d.Time
}
