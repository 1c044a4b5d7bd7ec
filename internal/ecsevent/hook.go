package ecsevent

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
)

// HookDetailType is the detail-type of ECS's lifecycle hook events.
const HookDetailType = "ECS Hook State Change"

// Hook event names (detail.eventName), as the ECS Developer Guide lists
// them ("Amazon ECS service deployment hook state change events").
const (
	HookInProgress     = "HOOK_IN_PROGRESS"
	HookAwaitingAction = "HOOK_AWAITING_ACTION" // a PAUSE hook waits for ContinueServiceDeployment
	HookSucceeded      = "HOOK_SUCCEEDED"       // for a PAUSE hook: continued
	HookFailed         = "HOOK_FAILED"          // for a PAUSE hook: rolled back
	HookTimedOut       = "HOOK_TIMED_OUT"
)

// Hook is one "ECS Hook State Change" event: a lifecycle hook of a service
// deployment changed status. The fields are those of the sample in the ECS
// Developer Guide (events/ecs-hook-state-change.json, from
// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_hook_state_change_events.html);
// its pause-hooks page shows the same detail without resources, so the
// service deployment is read from detail.serviceDeploymentArn, else
// resources[0].
type Hook struct {
	EventID              string
	Time                 time.Time
	Account, Region      string
	Service              ecsarn.ARN // from detail.serviceArn
	ServiceARN           string
	ClusterARN           string
	ServiceDeploymentARN string
	EventType            string // INFO or ERROR
	EventName            string // HOOK_…
	HookID               string // ContinueServiceDeployment's hookId
	HookType             string // PAUSE or AWS_LAMBDA
	LifecycleStage       string // e.g. POST_TEST_TRAFFIC_SHIFT
	ExpiresAt            time.Time
	UpdatedAt            time.Time
}

type rawHook struct {
	ID         string    `json:"id"`
	Source     string    `json:"source"`
	DetailType string    `json:"detail-type"`
	Account    string    `json:"account"`
	Region     string    `json:"region"`
	Time       time.Time `json:"time"`
	Resources  []string  `json:"resources"`
	Detail     struct {
		EventType            string    `json:"eventType"`
		EventName            string    `json:"eventName"`
		HookID               string    `json:"hookId"`
		HookType             string    `json:"hookType"`
		ExpiresAt            time.Time `json:"expiresAt"`
		LifecycleStage       string    `json:"lifecycleStage"`
		ClusterArn           string    `json:"clusterArn"`
		ServiceArn           string    `json:"serviceArn"`
		ServiceDeploymentArn string    `json:"serviceDeploymentArn"`
		UpdatedAt            time.Time `json:"updatedAt"`
	} `json:"detail"`
}

// ParseHook reads one hook event; anything else is an error that says
// what is wrong.
func ParseHook(data []byte) (Hook, error) {
	var r rawHook
	if err := json.Unmarshal(data, &r); err != nil {
		return Hook{}, fmt.Errorf("malformed ECS hook event: %w", err)
	}
	if r.Source != "aws.ecs" || r.DetailType != HookDetailType {
		return Hook{}, fmt.Errorf("not an %s event: source %q, detail-type %q", HookDetailType, r.Source, r.DetailType)
	}
	d := r.Detail
	svc, err := ecsarn.Parse(d.ServiceArn)
	if err != nil || svc.Kind != "service" || svc.Cluster == "" {
		return Hook{}, fmt.Errorf("malformed ECS hook event %s: detail.serviceArn %q is not a service ARN with its cluster", r.ID, d.ServiceArn)
	}
	sd := d.ServiceDeploymentArn
	if sd == "" && len(r.Resources) > 0 {
		sd = r.Resources[0]
	}
	if !strings.Contains(sd, ":service-deployment/") {
		return Hook{}, fmt.Errorf("malformed ECS hook event %s: no service deployment ARN in detail.serviceDeploymentArn or resources", r.ID)
	}
	if d.EventName == "" || d.HookID == "" {
		return Hook{}, fmt.Errorf("malformed ECS hook event %s: missing detail.eventName or detail.hookId", r.ID)
	}
	return Hook{EventID: r.ID, Time: r.Time, Account: r.Account, Region: r.Region, Service: svc, ServiceARN: d.ServiceArn,
		ClusterARN: d.ClusterArn, ServiceDeploymentARN: sd, EventType: d.EventType, EventName: d.EventName, HookID: d.HookID,
		HookType: d.HookType, LifecycleStage: d.LifecycleStage, ExpiresAt: d.ExpiresAt, UpdatedAt: d.UpdatedAt}, nil
}

// AwaitsAction reports whether a PAUSE hook waits for a person.
func (h Hook) AwaitsAction() bool { return h.EventName == HookAwaitingAction }

// Ended reports whether the hook failed or timed out: the deployment takes
// its failure or timeout action (a rollback, unless the hook's timeout
// action is CONTINUE).
func (h Hook) Ended() bool { return h.EventName == HookFailed || h.EventName == HookTimedOut }

// When is the best time of the change: ECS's updatedAt, else the event's.
func (h Hook) When() time.Time {
	if !h.UpdatedAt.IsZero() {
		return h.UpdatedAt
	}
	return h.Time
}
