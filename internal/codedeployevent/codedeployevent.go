// Package codedeployevent reads EventBridge "CodeDeploy Deployment
// State-change Notification" events, which aws-lambda-go has no type for.
package codedeployevent

import (
	"encoding/json"
	"fmt"
	"time"
)

// Source and DetailType identify the events this package reads.
const (
	Source     = "aws.codedeploy"
	DetailType = "CodeDeploy Deployment State-change Notification"
)

// States CodeDeploy reports for a deployment.
const (
	Start   = "START"
	Ready   = "READY" // blue/green: waiting to reroute traffic
	Success = "SUCCESS"
	Failure = "FAILURE"
	Stop    = "STOP"
)

// Deployment is one deployment state change.
type Deployment struct {
	EventID         string
	Time            time.Time
	Account         string
	Region          string
	Application     string
	DeploymentGroup string
	DeploymentID    string
	State           string
}

type raw struct {
	ID         string    `json:"id"`
	Source     string    `json:"source"`
	DetailType string    `json:"detail-type"`
	Account    string    `json:"account"`
	Region     string    `json:"region"`
	Time       time.Time `json:"time"`
	Detail     struct {
		Region          string `json:"region"`
		Application     string `json:"application"`
		DeploymentGroup string `json:"deploymentGroup"`
		DeploymentID    string `json:"deploymentId"`
		State           string `json:"state"`
	} `json:"detail"`
}

// Parse reads one event; anything else is an error that says what is wrong.
func Parse(data []byte) (Deployment, error) {
	var r raw
	if err := json.Unmarshal(data, &r); err != nil {
		return Deployment{}, fmt.Errorf("malformed CodeDeploy event: %w", err)
	}
	if r.Source != Source || r.DetailType != DetailType {
		return Deployment{}, fmt.Errorf("not a %s event: source %q, detail-type %q", DetailType, r.Source, r.DetailType)
	}
	d := r.Detail
	if d.DeploymentID == "" || d.State == "" {
		return Deployment{}, fmt.Errorf("malformed CodeDeploy event %s: missing detail.deploymentId or detail.state", r.ID)
	}
	region := d.Region
	if region == "" {
		region = r.Region
	}
	return Deployment{EventID: r.ID, Time: r.Time, Account: r.Account, Region: region, Application: d.Application,
		DeploymentGroup: d.DeploymentGroup, DeploymentID: d.DeploymentID, State: d.State}, nil
}
