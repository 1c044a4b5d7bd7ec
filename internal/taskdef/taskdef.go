// Package taskdef derives the next task definition revision from the running
// one: the same definition with only chosen container images changed, every
// registrable field and user tag carried over, and the autodeploy tags set.
package taskdef

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/distribution/reference"
)

// MaxTags is ECS's limit of tags on one resource.
const MaxTags = 50

// Tag keys written on every revision this system registers.
const (
	TagRule  = "autodeploy:rule"
	TagEvent = "autodeploy:event"
	// TagFrom is the revision this one was derived from, so a retry that
	// finds the deploy done but unrecorded can record it whole.
	TagFrom = "autodeploy:from"
)

// TagValue returns the value of the tag key, "" when absent.
func TagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// ContainerTagKey is the tag recording which image tag a container runs.
func ContainerTagKey(container string) string { return "autodeploy:" + container + ":tag" }

// ContainerPushedAtKey is the tag recording when that image was pushed.
func ContainerPushedAtKey(container string) string { return "autodeploy:" + container + ":pushed-at" }

// ContainerDigestKey is the tag recording the digest of an image deployed
// by tag (pin: tag), whose reference alone does not say which image it was.
func ContainerDigestKey(container string) string { return "autodeploy:" + container + ":digest" }

// pushedAtLayout keeps ECR's precision: imagePushedAt has milliseconds, and
// a time cut to whole seconds reads as older than the push it records.
const pushedAtLayout = "2006-01-02T15:04:05.000Z07:00"

// PushedAtValue is a push time as the pushed-at tag holds it.
func PushedAtValue(t time.Time) string { return t.UTC().Format(pushedAtLayout) }

// RecordedDigest returns the digest an earlier deploy by tag recorded for a
// container, "" when none was (a deploy by digest, or an older version).
func RecordedDigest(tags []types.Tag, container string) string {
	return TagValue(tags, ContainerDigestKey(container))
}

// RegisterInput turns a described task definition back into a registration
// request. Read-only fields (ARN, revision, status, requiresAttributes,
// compatibilities, registration and deregistration data) are dropped;
// everything else is carried over. TestRegisterInputCarriesEveryField fails
// when the SDK grows a field this function does not handle.
func RegisterInput(td *types.TaskDefinition, tags []types.Tag) *ecs.RegisterTaskDefinitionInput {
	in := &ecs.RegisterTaskDefinitionInput{
		ContainerDefinitions: td.ContainerDefinitions,
		Family:               td.Family,
		Cpu:                  td.Cpu,
		EnableFaultInjection: td.EnableFaultInjection,
		EphemeralStorage:     td.EphemeralStorage,
		ExecutionRoleArn:     td.ExecutionRoleArn,
		//lint:ignore SA1019 deprecated by ECS, but a faithful copy keeps what the running revision has
		InferenceAccelerators:         td.InferenceAccelerators,
		IpcMode:                       td.IpcMode,
		Memory:                        td.Memory,
		NetworkMode:                   td.NetworkMode,
		PidMode:                       td.PidMode,
		PlacementConstraints:          td.PlacementConstraints,
		ProxyConfiguration:            td.ProxyConfiguration,
		RequiresCompatibilities:       td.RequiresCompatibilities,
		RuntimePlatform:               td.RuntimePlatform,
		TaskRoleArn:                   td.TaskRoleArn,
		TrustedExecutionConfiguration: td.TrustedExecutionConfiguration,
		Volumes:                       td.Volumes,
	}
	// ECS rejects an empty tag list; none is sent as nil.
	if len(tags) > 0 {
		in.Tags = tags
	}
	return in
}

// WithImages returns a copy of td whose named containers run the given
// images; td itself is not changed.
func WithImages(td *types.TaskDefinition, images map[string]string) *types.TaskDefinition {
	out := *td
	out.ContainerDefinitions = slices.Clone(td.ContainerDefinitions)
	for i := range out.ContainerDefinitions {
		c := &out.ContainerDefinitions[i]
		if img, ok := images[aws.ToString(c.Name)]; ok {
			c.Image = aws.String(img)
		}
	}
	return &out
}

// ImageRepository returns the repository part of an image reference
// (host/path without tag or digest), or "" when it does not parse.
func ImageRepository(image string) string {
	ref, err := reference.Parse(image)
	if err != nil {
		return ""
	}
	if named, ok := ref.(reference.Named); ok {
		return named.Name()
	}
	return ""
}

// ImageTag returns the tag of an image reference, "" when it has none.
func ImageTag(image string) string {
	ref, err := reference.Parse(image)
	if err != nil {
		return ""
	}
	if tagged, ok := ref.(reference.Tagged); ok {
		return tagged.Tag()
	}
	return ""
}

// NoContainerError says the task definition has no container to update.
type NoContainerError struct{ Msg string }

func (e *NoContainerError) Error() string { return e.Msg }

// ChooseContainers returns the containers to update: the named ones (each
// must exist), or else every container whose image is in repo.
func ChooseContainers(td *types.TaskDefinition, named []string, repo string) ([]string, error) {
	var all []string
	var fromRepo []string
	for _, c := range td.ContainerDefinitions {
		name := aws.ToString(c.Name)
		all = append(all, name)
		if ImageRepository(aws.ToString(c.Image)) == repo {
			fromRepo = append(fromRepo, name)
		}
	}
	if len(named) > 0 {
		for _, n := range named {
			if !slices.Contains(all, n) {
				return nil, &NoContainerError{Msg: fmt.Sprintf("task definition %s has no container %q (it has %s)",
					aws.ToString(td.Family), n, strings.Join(all, ", "))}
			}
		}
		return named, nil
	}
	if len(fromRepo) == 0 {
		return nil, &NoContainerError{Msg: fmt.Sprintf("task definition %s has no container from repository %s",
			aws.ToString(td.Family), repo)}
	}
	return fromRepo, nil
}

// Image returns the current image of a container.
func Image(td *types.TaskDefinition, container string) string {
	for _, c := range td.ContainerDefinitions {
		if aws.ToString(c.Name) == container {
			return aws.ToString(c.Image)
		}
	}
	return ""
}

// Recorded returns what an earlier deploy recorded for a container: the tag
// and push time of its image; zero values when nothing was recorded.
func Recorded(tags []types.Tag, container string) (tag string, pushedAt time.Time) {
	for _, t := range tags {
		switch aws.ToString(t.Key) {
		case ContainerTagKey(container):
			tag = aws.ToString(t.Value)
		case ContainerPushedAtKey(container):
			pushedAt, _ = time.Parse(time.RFC3339, aws.ToString(t.Value))
		}
	}
	return tag, pushedAt
}

// TooManyTagsError says the merged tags exceed what ECS accepts.
type TooManyTagsError struct{ Count int }

func (e *TooManyTagsError) Error() string {
	return fmt.Sprintf("the new revision would carry %d tags, over ECS's limit of %d; remove user tags or autodeploy tags of containers that no longer exist", e.Count, MaxTags)
}

// MergeTags carries over the running revision's tags with set applied on
// top, in a stable order. Tags under the reserved aws: prefix cannot be
// registered and are dropped.
func MergeTags(existing []types.Tag, set map[string]string) ([]types.Tag, error) {
	var out []types.Tag
	for _, t := range existing {
		k := aws.ToString(t.Key)
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			continue
		}
		if _, replaced := set[k]; replaced {
			continue
		}
		out = append(out, types.Tag{Key: t.Key, Value: t.Value})
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if len(k) > 128 {
			return nil, fmt.Errorf("tag key %q is longer than ECS's 128 characters", k)
		}
		v := set[k]
		if len(v) > 256 {
			return nil, fmt.Errorf("tag %s value is longer than ECS's 256 characters", k)
		}
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if len(out) > MaxTags {
		return nil, &TooManyTagsError{Count: len(out)}
	}
	return out, nil
}
