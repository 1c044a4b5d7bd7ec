package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
)

// continueCmd continues the service's ECS-native deployment paused at a
// PAUSE lifecycle hook (ContinueServiceDeployment CONTINUE with that hook's
// id, rollout.Continue). With --hook (the id the notice names) a repeat —
// after a lost answer, or a second operator — says the hook was already
// continued and sends nothing, even when a linear or canary deployment
// already waits at its next step's hook.
func continueCmd(ctx context.Context, args []string, env Env) error {
	fs := flags("continue", env)
	sf := addTargetFlags(fs)
	hook := fs.String("hook", "", "the paused hook's id, as the notice names it (default: the hook that waits now)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, _, err := sf.resolve(ctx, env)
	if err != nil {
		return err
	}
	client := env.ecsClient(ecs.NewFromConfig(cfg))
	name := *sf.cluster + "/" + *sf.service
	svc, err := describeService(ctx, client, sf, cfg.Region)
	if err != nil {
		return fmt.Errorf("nothing continued: %w", err)
	}
	if kind := rollout.KindOf(*svc); !kind.IsECSNative() {
		return fmt.Errorf("nothing to continue: %s is a %s service, and only ECS-native blue/green, linear and canary deployments pause at hooks%s",
			name, kind, notNativeHint(kind))
	}
	a, err := rollout.Continue(ctx, client, *sf.cluster, *sf.service, rollout.ContinueOptions{HookID: *hook})
	var notPaused *rollout.NotPausedError
	switch {
	case errors.Is(err, rollout.ErrNothingInFlight):
		return fmt.Errorf("nothing to continue: no deployment of %s is in flight (it ended, or none started; autodeploy history shows how the last one ended)", name)
	case errors.As(err, &notPaused):
		return fmt.Errorf("nothing to continue: %s is not paused at a hook; its deployment stands at %s (service deployment %s)",
			name, notPaused.Stage, notPaused.ServiceDeploymentARN)
	case err != nil:
		return fmt.Errorf("%s not continued (autodeploy status shows where it stands; the same command again is safe: a continue ECS applied is not sent twice): %w", name, err)
	}
	if a.Already {
		fmt.Fprintf(env.Stdout, "%s: already continued: hook %s of service deployment %s (nothing sent)\n", name, a.HookID, a.ServiceDeploymentARN)
	} else {
		fmt.Fprintf(env.Stdout, "%s: continued at %s: hook %s of service deployment %s\n", name, a.Stage, a.HookID, a.ServiceDeploymentARN)
	}
	if a.Note != "" {
		fmt.Fprintf(env.Stdout, "  %s\n", a.Note)
	}
	fmt.Fprintf(env.Stdout, "follow it with: autodeploy status (the watcher reports how it ends)\n")
	return nil
}

// notNativeHint says, for a service that does not pause at ECS's hooks,
// where its rollouts are steered instead.
func notNativeHint(k rollout.Kind) string {
	if k.IsCodeDeployControlled() {
		return " (CodeDeploy runs this service's deployments: continue one in CodeDeploy, e.g. aws deploy continue-deployment)"
	}
	return ""
}
