// Package ecsarn parses and builds the ARNs of ECS clusters and services,
// which the rules file, IAM policies and lock keys all need.
package ecsarn

import (
	"fmt"
	"strconv"
	"strings"
)

// ARN is an ECS cluster or service ARN taken apart.
type ARN struct {
	Partition string
	Region    string
	Account   string
	Kind      string // "cluster" or "service"
	Cluster   string // for a service: its cluster, empty in the old ARN format
	Name      string
}

// Parse accepts arn:PARTITION:ecs:REGION:ACCOUNT:cluster/NAME and
// arn:PARTITION:ecs:REGION:ACCOUNT:service/[CLUSTER/]NAME.
func Parse(s string) (ARN, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "ecs" || parts[3] == "" || parts[4] == "" {
		return ARN{}, fmt.Errorf("%q is not an ECS ARN", s)
	}
	a := ARN{Partition: parts[1], Region: parts[3], Account: parts[4]}
	res := strings.Split(parts[5], "/")
	switch {
	case res[0] == "cluster" && len(res) == 2 && res[1] != "":
		a.Kind, a.Name = "cluster", res[1]
	case res[0] == "service" && len(res) == 2 && res[1] != "":
		a.Kind, a.Name = "service", res[1]
	case res[0] == "service" && len(res) == 3 && res[1] != "" && res[2] != "":
		a.Kind, a.Cluster, a.Name = "service", res[1], res[2]
	default:
		return ARN{}, fmt.Errorf("%q is neither an ECS cluster nor service ARN", s)
	}
	return a, nil
}

// Partition returns the ARN partition of a region.
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// FamilyRevision splits a task definition (an ARN or family:revision)
// into its family and revision number; n is 0 when it names no revision
// (then family is the whole name).
func FamilyRevision(taskDefinition string) (family string, n int) {
	rev := Revision(taskDefinition)
	i := strings.LastIndex(rev, ":")
	if i < 0 {
		return rev, 0
	}
	n, err := strconv.Atoi(rev[i+1:])
	if err != nil || n <= 0 {
		return rev, 0
	}
	return rev[:i], n
}

// Family is the family of a task definition (an ARN or family:revision).
func Family(taskDefinition string) string {
	f, _ := FamilyRevision(taskDefinition)
	return f
}

// Revision shortens a task definition ARN to "family:revision", the way
// people name revisions; anything else is returned as it is.
func Revision(taskDefinitionARN string) string {
	if i := strings.LastIndex(taskDefinitionARN, ":task-definition/"); i >= 0 {
		return taskDefinitionARN[i+len(":task-definition/"):]
	}
	return taskDefinitionARN
}

// Name is the name of a cluster or service given as a name or an ARN;
// anything that is not an ECS cluster or service ARN is returned as it is.
// What does not begin "arn:" is never parsed (Parse would refuse it), so a
// plain name, the loader's usual case, costs nothing.
func Name(nameOrARN string) string {
	if !strings.HasPrefix(nameOrARN, "arn:") {
		return nameOrARN
	}
	if a, err := Parse(nameOrARN); err == nil {
		return a.Name
	}
	return nameOrARN
}

// ServiceARN is the ARN of a service in the long format, or "" when the
// account or region is unknown.
func ServiceARN(account, region, cluster, service string) string {
	if account == "" || region == "" {
		return ""
	}
	return "arn:" + Partition(region) + ":ecs:" + region + ":" + account + ":service/" + cluster + "/" + service
}
