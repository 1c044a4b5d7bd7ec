package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

// rollbackPlan is what a rollback will do, decided before it does anything
// (and all that --dry-run does).
type rollbackPlan struct {
	current, target string // task definition ARNs
	// forced says why --force was needed, "" when it was not.
	forced   string
	forward  bool
	restores []restore
	// unchecked says why the last rollback's images were not checked
	// ("" when they were): clean-up deleted its revisions.
	unchecked string
}

// restore is one container whose image the rollback changes.
type restore struct {
	container          string
	image, tag         string // restored
	fromImage, fromTag string // running now
}

// planRollback picks the target (the named revision, or the revision the
// latest autodeploy deploy of the running one replaced) and refuses, unless
// force, what would roll forward: a revision newer than the running one,
// or one that runs an image the last rollback took out. Only an ACTIVE
// revision is a target (ECS deploys no INACTIVE one): one clean-up
// deregistered or deleted is refused, naming the ACTIVE ones there are.
func planRollback(ctx context.Context, client rollbackReader, store *history.Store, key, current, to string, force bool) (rollbackPlan, error) {
	p := rollbackPlan{current: current}
	recs, err := store.Recent(ctx, key, history.RollbackReach)
	if err != nil {
		return p, err
	}
	which := "" // how the target was chosen, for a refusal
	if to != "" {
		p.target = ecsarn.Family(current) + ":" + to
	} else if p.target = history.RollbackTarget(recs, current); p.target == "" {
		return p, fmt.Errorf("no recorded deploy put the running %s in place (a rollback restored it, or it was deployed outside autodeploy), so there is nothing earlier to go back to; name a revision with --to: %s",
			ecsarn.Revision(current), activeChoices(ctx, client, current, failedRevisions(recs)))
	} else {
		which = fmt.Sprintf(", the revision the last deploy of %s replaced,", ecsarn.Revision(current))
	}
	tgt, err := describeRevision(ctx, client, p.target)
	if err != nil {
		return p, goneTarget(ctx, client, err, serviceName(key), p.target, current, which, failedRevisions(recs))
	}
	p.target = aws.ToString(tgt.TaskDefinition.TaskDefinitionArn)
	if p.target != current {
		if err := checkActive(ctx, client, tgt, current, which, failedRevisions(recs)); err != nil {
			if which != "" {
				err = fmt.Errorf("%w; name one with --to", err)
			}
			return p, err
		}
	}
	if p.target == current {
		return p, fmt.Errorf("the service already runs %s", ecsarn.Revision(current))
	}
	cur, err := describeRevision(ctx, client, current)
	if err != nil {
		return p, err
	}
	p.restores = restores(cur, tgt)

	var refusals []string
	if newer(p.target, current) {
		p.forward = true
		refusals = append(refusals, fmt.Sprintf("%s is newer than the running %s: that rolls forward, not back", ecsarn.Revision(p.target), ecsarn.Revision(current)))
	}
	if last := lastRollback(recs); last != nil {
		taken, err := takenOut(ctx, client, *last)
		var gone *revisionGoneError
		switch {
		case errors.As(err, &gone):
			// Deleted revisions cannot run again; their images could, in
			// another revision, but they are not known any more.
			p.unchecked = fmt.Sprintf("not checked whether %s runs an image the last rollback (%s → %s) took out: clean-up deleted %s",
				ecsarn.Revision(p.target), ecsarn.Revision(last.FromTaskDefinition), ecsarn.Revision(last.ToTaskDefinition), gone.revision)
		case err != nil && !force:
			return p, fmt.Errorf("%w; pass --force to roll back without that check", err)
		}
		for _, c := range tgt.TaskDefinition.ContainerDefinitions {
			if img := aws.ToString(c.Image); img != "" && taken[aws.ToString(c.Name)] == img {
				refusals = append(refusals, fmt.Sprintf("%s runs %s in %s, the image the last rollback (%s, %s → %s) took out",
					ecsarn.Revision(p.target), img, aws.ToString(c.Name), last.DeployedAt.UTC().Format("2006-01-02T15:04:05Z"),
					ecsarn.Revision(last.FromTaskDefinition), ecsarn.Revision(last.ToTaskDefinition)))
			}
		}
	}
	if len(refusals) > 0 {
		if !force {
			return p, fmt.Errorf("refused: %s; pass --force to deploy it all the same", strings.Join(refusals, "; "))
		}
		p.forced = strings.Join(refusals, "; ")
	}
	return p, nil
}

// lastRollback is the newest recorded rollback that went back (a forced
// roll forward takes nothing out worth guarding).
func lastRollback(recs []history.Record) *history.Record {
	for i, r := range recs {
		if r.Rule == rollbackRule && r.Outcome == string(deploy.Deployed) && !newer(r.ToTaskDefinition, r.FromTaskDefinition) {
			return &recs[i]
		}
	}
	return nil
}

// takenOut are the images, by container, a rollback replaced.
func takenOut(ctx context.Context, client taskDefinitionReader, rb history.Record) (map[string]string, error) {
	from, err := describeRevision(ctx, client, rb.FromTaskDefinition)
	if err != nil {
		return nil, fmt.Errorf("checking what the last rollback took out: %w", err)
	}
	to, err := describeRevision(ctx, client, rb.ToTaskDefinition)
	if err != nil {
		return nil, fmt.Errorf("checking what the last rollback took out: %w", err)
	}
	taken := map[string]string{}
	for _, c := range from.TaskDefinition.ContainerDefinitions {
		name := aws.ToString(c.Name)
		if img := aws.ToString(c.Image); img != taskdef.Image(to.TaskDefinition, name) {
			taken[name] = img
		}
	}
	return taken, nil
}

// describeRevision reads a revision with its tags (the tags name the
// images' tags), in the operator's words when it does not exist.
func describeRevision(ctx context.Context, client taskDefinitionReader, td string) (*ecs.DescribeTaskDefinitionOutput, error) {
	out, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(td), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	var ce *types.ClientException
	switch {
	case errors.As(err, &ce):
		return nil, &revisionGoneError{revision: ecsarn.Revision(td)}
	case err != nil:
		return nil, fmt.Errorf("read revision %s: %w", ecsarn.Revision(td), err)
	}
	return out, nil
}

// restores are the containers whose image differs between cur and tgt.
func restores(cur, tgt *ecs.DescribeTaskDefinitionOutput) []restore {
	var out []restore
	for _, c := range tgt.TaskDefinition.ContainerDefinitions {
		name := aws.ToString(c.Name)
		r := restore{container: name, image: aws.ToString(c.Image), fromImage: taskdef.Image(cur.TaskDefinition, name)}
		if r.image == r.fromImage {
			continue
		}
		r.tag = imageTag(tgt.Tags, name, r.image)
		r.fromTag = imageTag(cur.Tags, name, r.fromImage)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b restore) int { return strings.Compare(a.container, b.container) })
	return out
}

// imageTag is the tag a deploy recorded for the container, else the
// reference's own.
func imageTag(tags []types.Tag, container, image string) string {
	if tag, _ := taskdef.Recorded(tags, container); tag != "" {
		return tag
	}
	return taskdef.ImageTag(image)
}

func (p rollbackPlan) direction() string {
	if p.forward {
		return "forward"
	}
	return "back"
}

func (p rollbackPlan) printRestores(w io.Writer) {
	if p.forced != "" {
		fmt.Fprintf(w, "  --force: %s\n", p.forced)
	}
	if p.unchecked != "" {
		fmt.Fprintf(w, "  %s\n", p.unchecked)
	}
	if len(p.restores) == 0 {
		fmt.Fprintln(w, "  restores no other image: the containers run the same images (other settings of the revision differ)")
	}
	for _, r := range p.restores {
		fmt.Fprintf(w, "  restores %s: %s, in place of %s\n", r.container, label(r.image, r.tag), label(r.fromImage, r.fromTag))
	}
}

// label is an image as operators know it: the reference, and the tag when
// the reference is a digest.
func label(image, tag string) string {
	if tag == "" || taskdef.ImageTag(image) == tag {
		return image
	}
	return image + " (" + tag + ")"
}

// record fills a rollback's history record with the image it restores:
// the first container's in the record's image fields, every container's
// name, and any further image in the reason.
func (p rollbackPlan) record(rec history.Record) history.Record {
	if p.forced != "" {
		rec.Reason += " (--force: " + p.forced + ")"
	}
	for i, r := range p.restores {
		rec.Containers = append(rec.Containers, r.container)
		if i == 0 {
			rec.Repository, rec.Tag = repositoryName(r.image), r.tag
			if at := strings.LastIndex(r.image, "@"); at >= 0 {
				rec.Digest = r.image[at+1:]
			}
			continue
		}
		rec.Reason += "; also restores " + r.container + ": " + label(r.image, r.tag)
	}
	return rec
}

// repositoryName is an image's repository without its registry host
// (as the deployer records it: "web", "team/web").
func repositoryName(image string) string {
	repo := taskdef.ImageRepository(image)
	if host, rest, ok := strings.Cut(repo, "/"); ok && strings.ContainsAny(host, ".:") {
		return rest
	}
	return repo
}

// serviceName is a history.ServiceKey's cluster/service.
func serviceName(key string) string {
	if parts := strings.SplitN(key, "/", 3); len(parts) == 3 {
		return parts[2]
	}
	return key
}

func newer(a, b string) bool {
	fa, na := ecsarn.FamilyRevision(a)
	fb, nb := ecsarn.FamilyRevision(b)
	return fa == fb && na > nb
}
