package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

func hold(ctx context.Context, args []string, env Env) error {
	fs := flags("hold", env)
	sf := addServiceFlags(fs, env)
	reason := fs.String("reason", "", "why (required): it is shown wherever the service is skipped")
	by := fs.String("by", "", "who holds it (default: your AWS identity)")
	force := fs.Bool("force", false, "replace the service's current hold (its holder and reason stay in history)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usageError{"--reason is required: say why, for whoever finds the service held"}
	}
	cfg, key, err := sf.resolve(ctx, env)
	if err != nil {
		return err
	}
	if _, err := describeService(ctx, ecs.NewFromConfig(cfg), sf, cfg.Region); err != nil {
		return fmt.Errorf("not held: %w", err)
	}
	h := history.Hold{By: cmp.Or(*by, who(ctx, cfg, env)), At: env.Now().UTC(), Reason: *reason}
	replaced, err := history.NewStore(awsenv.StateTable(cfg), *sf.table).PlaceHold(ctx, key, h, *force)
	var already *history.AlreadyHeldError
	switch {
	case errors.As(err, &already) && already.Hold.By == h.By && already.Hold.Reason == h.Reason:
		// The same command again (its first answer lost, say): done already.
		fmt.Fprintf(env.Stdout, "%s/%s already %s\n", *sf.cluster, *sf.service, already.Hold.String())
		return nil
	case errors.As(err, &already):
		return fmt.Errorf("%s/%s is already %s\nit stays held so; to replace that hold (it stays in history): autodeploy hold %s --reason %q --force",
			*sf.cluster, *sf.service, already.Hold.String(), sf.args(), *reason)
	case err != nil:
		return fmt.Errorf("%s/%s not held: %w", *sf.cluster, *sf.service, err)
	}
	fmt.Fprintf(env.Stdout, "%s/%s %s\n", *sf.cluster, *sf.service, h.String())
	if replaced != nil {
		fmt.Fprintf(env.Stdout, "it replaces: %s (kept in history)\n", replaced.String())
	}
	fmt.Fprintf(env.Stdout, "pushes, promotions and sweeps skip it until: autodeploy resume %s\n", sf.args())
	return nil
}

func resume(ctx context.Context, args []string, env Env) error {
	fs := flags("resume", env)
	sf := addServiceFlags(fs, env)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, key, err := sf.resolve(ctx, env)
	if err != nil {
		return err
	}
	if _, err := describeService(ctx, ecs.NewFromConfig(cfg), sf, cfg.Region); err != nil {
		return fmt.Errorf("not resumed: %w", err)
	}
	was, err := history.NewStore(awsenv.StateTable(cfg), *sf.table).LiftHold(ctx, key, who(ctx, cfg, env), env.Now().UTC())
	if err != nil {
		return fmt.Errorf("%s/%s not resumed: %w", *sf.cluster, *sf.service, err)
	}
	if was == nil {
		fmt.Fprintf(env.Stdout, "%s/%s was not held\n", *sf.cluster, *sf.service)
		return nil
	}
	fmt.Fprintf(env.Stdout, "%s/%s resumed (it was %s); the next push or sweep may move it\n", *sf.cluster, *sf.service, was.String())
	return nil
}

// who names the caller for a hold: the AWS identity, else the login name.
func who(ctx context.Context, cfg aws.Config, env Env) string {
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	return whoOf(id, err, env)
}

// whoOf names the caller from its identity (GetCallerIdentity's answer and
// error): the ARN past its account, else the login name.
func whoOf(id *sts.GetCallerIdentityOutput, err error, env Env) string {
	if err != nil {
		return cmp.Or(env.Getenv("USER"), "unknown")
	}
	arn := aws.ToString(id.Arn)
	if i := strings.Index(arn, ":"+aws.ToString(id.Account)+":"); i >= 0 {
		return arn[i+len(aws.ToString(id.Account))+2:] // user/alice, assumed-role/Admin/alice
	}
	return arn
}
