package cli

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

func rollback(ctx context.Context, args []string, env Env) error {
	fs := flags("rollback", env)
	sf := addServiceFlags(fs, env)
	to := fs.String("to", "", "revision number of the service's family to return to (default: the one before the latest autodeploy deploy)")
	noHold := fs.Bool("no-hold", false, "do not hold the service (the next push or sweep may roll it forward again)")
	application := fs.String("application", "", "blue/green service: CodeDeploy application (default: found by the service)")
	group := fs.String("deployment-group", "", "blue/green service: CodeDeploy deployment group (with --application)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, key, err := sf.resolve(ctx, env)
	if err != nil {
		return err
	}
	db := awsenv.StateTable(cfg)
	store := history.NewStore(db, *sf.table)
	client := ecs.NewFromConfig(cfg)

	// The deployer's own lock on the service, so no deploy runs meanwhile.
	held, err := history.NewServices(lock.New(db, *sf.table), store).Take(ctx, key, "autodeploy rollback")
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		if finished {
			return
		}
		if err := held.Release(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(env.Stderr, "warning: %v\n", err)
		}
	}()
	svcs, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: sf.cluster, Services: []string{*sf.service}})
	if err != nil {
		return fmt.Errorf("describe service %s/%s: %w", *sf.cluster, *sf.service, err)
	}
	if len(svcs.Services) == 0 {
		return fmt.Errorf("service %s not found in cluster %s", *sf.service, *sf.cluster)
	}
	svc := &svcs.Services[0]
	current := bluegreen.RunningTaskDefinition(svc)
	target, err := rollbackTarget(ctx, client, store, key, current, *to)
	if err != nil {
		return err
	}
	if target == current {
		return fmt.Errorf("the service already runs %s", ecsarn.Revision(current))
	}
	now := env.Now()
	eventID := fmt.Sprintf("rollback-%d", now.UnixNano())
	var deployment string
	if deploy.IsBlueGreen(svc) {
		if (*application == "") != (*group == "") {
			return usageError{"--application and --deployment-group go together"}
		}
		cd := &rules.CodeDeploy{Application: *application, DeploymentGroup: *group}
		deployment, err = rollBackBlueGreen(ctx, codedeploy.NewFromConfig(cfg), svc, *sf.cluster, *sf.service, target, cd, eventID)
	} else {
		deployment, err = rollBackRolling(ctx, client, *sf.cluster, *sf.service, target)
	}
	if err != nil {
		return err
	}
	finished = true
	if err := held.Finish(context.WithoutCancel(ctx), history.Record{
		Rule: rollbackRule, Account: *sf.account, Region: cfg.Region, Cluster: *sf.cluster, Service: *sf.service,
		FromTaskDefinition: current, ToTaskDefinition: target, DeploymentID: deployment,
		EventID: eventID, Outcome: string(deploy.Deployed),
		Reason: "rollback by the autodeploy CLI", PushedAt: now, DeployedAt: now,
	}); err != nil {
		return fmt.Errorf("rolled back, but history not written: %w", err)
	}
	fmt.Fprintf(env.Stdout, "rolled %s/%s back: %s → %s (deployment %s)\n", *sf.cluster, *sf.service, ecsarn.Revision(current), ecsarn.Revision(target), cmp.Or(deployment, "-"))
	if *noHold {
		fmt.Fprintln(env.Stdout, "not held (--no-hold): the next push or sweep may roll it forward again")
		return nil
	}
	// Without a hold the next sweep would put the newest image back.
	h := history.Hold{By: who(ctx, cfg, env), At: now.UTC(), Reason: "rolled back from " + ecsarn.Revision(current) + " to " + ecsarn.Revision(target)}
	if err := store.SetHold(ctx, key, h); err != nil {
		return fmt.Errorf("rolled back, but not held (the next sweep may roll it forward): %w", err)
	}
	fmt.Fprintf(env.Stdout, "%s: pushes, promotions and sweeps skip it until: autodeploy resume %s\n", h.String(), sf.args())
	return nil
}

// rollBackRolling points an ECS-controlled service at target and returns
// the deployment that rolls it.
func rollBackRolling(ctx context.Context, client *ecs.Client, cluster, service, target string) (string, error) {
	upd, err := client.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String(service), TaskDefinition: aws.String(target)})
	if err != nil {
		return "", fmt.Errorf("update service %s/%s to %s: %w", cluster, service, target, err)
	}
	var deployment string
	for _, d := range upd.Service.Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			deployment = aws.ToString(d.Id)
		}
	}
	return deployment, nil
}

// rollBackBlueGreen creates the CodeDeploy deployment of target on a
// blue/green service (ECS refuses it a task definition) and returns its id.
func rollBackBlueGreen(ctx context.Context, client *codedeploy.Client, svc *types.Service, cluster, service, target string, cd *rules.CodeDeploy, eventID string) (string, error) {
	var groups bluegreen.Groups
	grp, err := groups.Find(ctx, client, "", cluster, service, cd)
	if err != nil {
		return "", err
	}
	spec, err := bluegreen.BuildAppSpec(target, svc, nil)
	if err != nil {
		return "", err
	}
	started, err := bluegreen.Start(ctx, client, grp, spec, bluegreen.Marker(eventID, rollbackRule))
	if err != nil {
		return "", fmt.Errorf("roll %s/%s back to %s: %w", cluster, service, target, err)
	}
	return started.ID, nil
}

// rollbackRule is the rule name history records a CLI rollback under.
const rollbackRule = "rollback"

// rollbackTarget is the named revision, or the revision the latest
// autodeploy deploy of the running one replaced. Rollbacks themselves are
// passed over: after a rollback, the next one goes further back (to what the
// deploy that put the restored revision in place replaced), never forward.
func rollbackTarget(ctx context.Context, client *ecs.Client, store *history.Store, key, current, to string) (string, error) {
	if to != "" {
		if _, err := strconv.Atoi(to); err != nil {
			return "", usageError{fmt.Sprintf("--to %q: want a revision number", to)}
		}
		family := ecsarn.Revision(current)
		if i := strings.LastIndex(family, ":"); i >= 0 {
			family = family[:i]
		}
		out, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(family + ":" + to)})
		if err != nil {
			return "", fmt.Errorf("revision %s:%s: %w", family, to, err)
		}
		return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
	}
	recs, err := store.Recent(ctx, key, 50)
	if err != nil {
		return "", err
	}
	for _, r := range recs {
		if r.Rule != rollbackRule && r.Outcome == string(deploy.Deployed) && r.ToTaskDefinition == current && r.FromTaskDefinition != "" {
			return r.FromTaskDefinition, nil
		}
	}
	return "", fmt.Errorf("no recorded deploy put the running %s in place (a rollback restored it, or it was deployed outside autodeploy), so there is nothing earlier to go back to; name a revision with --to", ecsarn.Revision(current))
}
