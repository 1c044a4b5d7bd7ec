package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"

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
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

func rollback(ctx context.Context, args []string, env Env) error {
	fs := flags("rollback", env)
	sf := addServiceFlags(fs, env)
	to := fs.String("to", "", "revision number of the service's family to return to (default: the one before the latest autodeploy deploy)")
	noHold := fs.Bool("no-hold", false, "do not hold the service (the next push or sweep may roll it forward again)")
	force := fs.Bool("force", false, "deploy the revision even when it is newer than the running one, or runs an image the last rollback took out")
	dryRun := fs.Bool("dry-run", false, "say what the rollback would do, and do nothing (no lock, no write)")
	application := fs.String("application", "", "blue/green service: CodeDeploy application (default: found by the service)")
	group := fs.String("deployment-group", "", "blue/green service: CodeDeploy deployment group (with --application)")
	wf := addWaitFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *wf.wait && *dryRun {
		// As reconcile: nothing would be deployed, so nothing to follow.
		return usageError{"--wait follows the rollback's deploy; a --dry-run makes none"}
	}
	if *to != "" {
		if n, err := strconv.Atoi(*to); err != nil || n < 1 {
			return usageError{fmt.Sprintf("--to %q: want a revision number, 1 or more", *to)}
		}
	}
	if err := wf.check(); err != nil {
		return err
	}
	if (*application == "") != (*group == "") {
		return usageError{"--application and --deployment-group go together"}
	}
	cfg, key, err := sf.resolve(ctx, env)
	if err != nil {
		return err
	}
	db := awsenv.StateTable(cfg)
	store := history.NewStore(db, *sf.table)
	client := env.ecsClient(ecs.NewFromConfig(cfg))
	name := *sf.cluster + "/" + *sf.service

	if *dryRun {
		svc, err := describeService(ctx, client, sf, cfg.Region)
		if err != nil {
			return err
		}
		kind := rollout.KindOf(*svc)
		np, err := planNative(ctx, client, kind, *sf.cluster, *sf.service, *to, env.Now())
		if err != nil {
			return err
		}
		if np != nil {
			fmt.Fprintf(env.Stdout, "would roll %s back through ECS: %s (dry run: nothing done)\n", name, np.would())
			np.plan.printRestores(env.Stdout)
		} else {
			p, err := planRollback(ctx, client, store, key, bluegreen.RunningTaskDefinition(svc), *to, *force)
			if err != nil {
				return err
			}
			how := "a rolling deployment"
			switch {
			case kind.IsCodeDeployControlled():
				how = "a CodeDeploy deployment"
			case kind.IsECSNative():
				how = "a new ECS-native " + string(kind.Strategy) + " deployment (none is in flight to roll back through ECS)"
			}
			fmt.Fprintf(env.Stdout, "would roll %s %s: %s → %s, by %s (dry run: nothing done)\n", name, p.direction(), ecsarn.Revision(p.current), ecsarn.Revision(p.target), how)
			p.printRestores(env.Stdout)
		}
		switch states, err := store.States(ctx, []string{key}); {
		case err != nil:
			return err
		case *noHold:
			fmt.Fprintln(env.Stdout, "would not hold it (--no-hold): the next push or sweep may roll it forward again")
		case states[key].Hold != nil:
			fmt.Fprintf(env.Stdout, "it stays %s\n", states[key].Hold.String())
		default:
			fmt.Fprintln(env.Stdout, "would hold it, so that pushes, promotions and sweeps leave it there")
		}
		return nil
	}

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
	svc, err := describeService(ctx, client, sf, cfg.Region)
	if err != nil {
		return err
	}
	kind := rollout.KindOf(*svc)
	now := env.Now()
	eventID := fmt.Sprintf("rollback-%d", now.UnixNano())
	// An ECS-native deployment in flight is rolled back by ECS, to the
	// revision it came from; only with none in flight (it ended meanwhile
	// too) is an older revision deployed.
	np, err := planNative(ctx, client, kind, *sf.cluster, *sf.service, *to, now)
	if err != nil {
		return err
	}
	var act rollout.Action
	if np != nil {
		act, err = rollout.RollBackAmong(ctx, client, *sf.cluster, *sf.service, np.all)
		switch {
		case errors.Is(err, rollout.ErrNothingInFlight):
			np = nil
		case err != nil:
			return fmt.Errorf("%s not rolled back (the same command again is safe: a rollback ECS applied is not sent twice): %w", name, err)
		}
	}
	var p rollbackPlan
	var deployment string
	// What --wait follows: the rollback's own record, or ECS's rollback of
	// the deployment in flight.
	follow := waitFor{cluster: *sf.cluster, service: *sf.service, key: key, eventID: eventID}
	current := bluegreen.RunningTaskDefinition(svc)
	switch {
	case np != nil:
		p, current = np.plan, np.plan.current
	default:
		if p, err = planRollback(ctx, client, store, key, current, *to, *force); err != nil {
			return err
		}
		if kind.IsCodeDeployControlled() {
			cd := &rules.CodeDeploy{Application: *application, DeploymentGroup: *group}
			deployment, err = rollBackBlueGreen(ctx, codedeploy.NewFromConfig(cfg), svc, *sf.cluster, *sf.service, p.target, cd, eventID)
		} else {
			deployment, err = rollBackRolling(ctx, client, *sf.cluster, *sf.service, p.target)
		}
		if err != nil {
			return err
		}
	}

	// The hold is placed while the lock is still ours: a deploy waiting on
	// the lock (a retry, a sweep) takes it only after, and sees the hold.
	// Without one the next sweep would put the newest image back.
	var holdErr error
	var kept *history.Hold
	h := history.Hold{By: who(ctx, cfg, env), At: now.UTC(), Reason: "rolled " + p.direction() + " from " + ecsarn.Revision(current) + " to " + ecsarn.Revision(p.target)}
	if np != nil {
		h.Reason = "rolled back through ECS from " + ecsarn.Revision(current) + " to " + cmp.Or(ecsarn.Revision(p.target), "the revision before")
	}
	if !*noHold {
		var already *history.AlreadyHeldError
		if _, holdErr = store.PlaceHold(ctx, key, h, false); errors.As(holdErr, &already) {
			// An operator's hold stays as it is: its reason is theirs.
			kept, holdErr = &already.Hold, nil
		}
	}
	rec := p.record(history.Record{
		Rule: rollbackRule, Account: *sf.account, Region: cfg.Region, Cluster: *sf.cluster, Service: *sf.service,
		FromTaskDefinition: current, ToTaskDefinition: p.target, DeploymentID: deployment, Rollout: kind.String(),
		EventID: eventID, Outcome: string(deploy.Deployed),
		Reason: "rollback by the autodeploy CLI", PushedAt: now, DeployedAt: now,
	})
	switch {
	case np != nil && act.Already:
		// Nothing was sent: whoever rolled it back (an alarm, a hook, an
		// earlier run whose answer was lost) has the history's account of it.
		if err := held.Release(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(env.Stderr, "warning: %v\n", err)
		}
		finished = true
		fmt.Fprintf(env.Stdout, "%s: already rolling back through ECS: %s (nothing sent)\n", name, act.Note)
		follow.serviceDeployment = act.ServiceDeploymentARN
	case np != nil:
		follow.serviceDeployment = act.ServiceDeploymentARN
		finished = true
		rec.ServiceDeploymentARN = act.ServiceDeploymentARN
		rec.Reason = "rollback through ECS by the autodeploy CLI: " + np.how(act)
		if err := held.Finish(context.WithoutCancel(ctx), rec); err != nil {
			return fmt.Errorf("rolled %s back through ECS, but its history was not written (run `autodeploy history` to check): %w", name, err)
		}
		fmt.Fprintf(env.Stdout, "rolling %s back through ECS: %s, %s → %s (service deployment %s)\n", name, np.how(act),
			ecsarn.Revision(current), cmp.Or(ecsarn.Revision(p.target), "the revision before"), act.ServiceDeploymentARN)
		if act.Note != "" {
			fmt.Fprintf(env.Stdout, "  %s\n", act.Note)
		}
		p.printRestores(env.Stdout)
	default:
		finished = true
		if err := held.Finish(context.WithoutCancel(ctx), rec); err != nil {
			return fmt.Errorf("rolled %s %s, but its history was not written (run `autodeploy history` to check): %w", name, p.direction(), err)
		}
		fmt.Fprintf(env.Stdout, "rolled %s %s: %s → %s (deployment %s)\n", name, p.direction(), ecsarn.Revision(current), ecsarn.Revision(p.target), cmp.Or(deployment, "-"))
		p.printRestores(env.Stdout)
	}
	switch {
	case *noHold:
		fmt.Fprintln(env.Stdout, "not held (--no-hold): the next push or sweep may roll it forward again")
	case holdErr != nil:
		return fmt.Errorf("rolled back, but not held (the next sweep may roll it forward; hold it with: autodeploy hold %s --reason …): %w", sf.args(), holdErr)
	case kept != nil:
		fmt.Fprintf(env.Stdout, "it stays %s: pushes, promotions and sweeps skip it until: autodeploy resume %s\n", kept.String(), sf.args())
	default:
		fmt.Fprintf(env.Stdout, "%s: pushes, promotions and sweeps skip it until: autodeploy resume %s\n", h.String(), sf.args())
	}
	if !*wf.wait {
		return nil
	}
	_, err = waitAll(ctx, wf.follower(store, client, env, env.Stdout), []waitFor{follow}, env.Now().Add(*wf.timeout))
	return err
}

// rollBackRolling points an ECS-controlled service at target and returns
// the deployment that rolls it.
func rollBackRolling(ctx context.Context, client rollout.UpdateServiceAPI, cluster, service, target string) (string, error) {
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
const rollbackRule = rules.RollbackRule
