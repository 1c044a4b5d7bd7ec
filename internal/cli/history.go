package cli

import (
	"cmp"
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

func showHistory(ctx context.Context, args []string, env Env) error {
	fs := flags("history", env)
	sf := addServiceFlags(fs, env)
	limit := fs.Int("limit", 20, "how many deploys")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, key, err := sf.resolve(ctx, env)
	if err != nil {
		return err
	}
	recs, err := history.NewStore(awsenv.StateTable(cfg), *sf.table).Recent(ctx, key, int32(*limit))
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		fmt.Fprintf(env.Stdout, "no deploys recorded for %s\n", key)
		return nil
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DEPLOYED\tRULE\tIMAGE\tOUTCOME\tDEPLOYMENT\tREVISION\tREASON")
	for _, r := range recs {
		image := r.Repository + ":" + r.Tag
		if r.Repository == "" {
			image = "-"
		}
		outcome := r.Outcome
		if r.DeploymentOutcome != "" {
			outcome += ", " + r.DeploymentOutcome
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s → %s\t%s\n", r.DeployedAt.UTC().Format(time.RFC3339), r.Rule, image,
			outcome, cmp.Or(r.DeploymentID, "-"), ecsarn.Revision(r.FromTaskDefinition), ecsarn.Revision(r.ToTaskDefinition),
			cmp.Or(r.DeploymentReason, r.Reason))
	}
	return w.Flush()
}
