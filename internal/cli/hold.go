package cli

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

func hold(ctx context.Context, args []string, env Env) error {
	fs := flags("hold", env)
	sf := addServiceFlags(fs, env)
	reason := fs.String("reason", "", "why (required): it is shown wherever the service is skipped")
	by := fs.String("by", "", "who holds it (default: your AWS identity)")
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
	h := history.Hold{By: cmp.Or(*by, who(ctx, cfg, env)), At: env.Now().UTC(), Reason: *reason}
	if err := history.NewStore(awsenv.StateTable(cfg), *sf.table).SetHold(ctx, key, h); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s/%s %s\npushes, promotions and sweeps skip it until: autodeploy resume %s\n",
		*sf.cluster, *sf.service, h.String(), sf.args())
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
	was, err := history.NewStore(awsenv.StateTable(cfg), *sf.table).Resume(ctx, key)
	if err != nil {
		return err
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
	if id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
		arn := aws.ToString(id.Arn)
		if i := strings.Index(arn, ":"+aws.ToString(id.Account)+":"); i >= 0 {
			return arn[i+len(aws.ToString(id.Account))+2:] // user/alice, assumed-role/Admin/alice
		}
		return arn
	}
	return cmp.Or(env.Getenv("USER"), "unknown")
}
