package cli

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

func showHistory(ctx context.Context, args []string, env Env) error {
	fs := flags("history", env)
	sf := addServiceFlags(fs, env)
	limit := fs.Int("limit", 20, "how many rows (deploys, rollbacks, holds, resumes), 1–1000")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return usageError{fmt.Sprintf("--limit %d: want 1 to 1000", *limit)}
	}
	cfg, key, err := sf.resolve(ctx, env)
	if err != nil {
		return err
	}
	store := history.NewStore(awsenv.StateTable(cfg), *sf.table)
	recs, err := store.Recent(ctx, key, int32(*limit))
	if err != nil {
		return err
	}
	holds, err := store.HoldEvents(ctx, key, int32(*limit))
	if err != nil {
		return err
	}
	rows := historyRows(recs, holds)
	if len(rows) == 0 {
		fmt.Fprintf(env.Stdout, "no deploys or holds recorded for %s\n", key)
		return nil
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "WHEN\tRULE\tIMAGE\tOUTCOME\tDEPLOYMENT\tREVISION\tREASON")
	for _, r := range rows[:min(len(rows), *limit)] {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.at.UTC().Format(time.RFC3339), r.rule, r.image, r.outcome, r.deployment, r.revision, r.reason)
	}
	return w.Flush()
}

type historyRow struct {
	at                                                 time.Time
	rule, image, outcome, deployment, revision, reason string
}

// historyRows merges deploys (and rollbacks) with holds and resumes, newest
// first. Holds live in items of their own (history.HoldEvent), so no
// reader of deploys mistakes one for a deploy.
func historyRows(recs []history.Record, holds []history.HoldEvent) []historyRow {
	var rows []historyRow
	for _, r := range recs {
		image := "-"
		switch {
		case r.Repository != "" && r.Tag != "":
			image = r.Repository + ":" + r.Tag
		case r.Repository != "" && r.Digest != "":
			image = r.Repository + "@" + r.Digest
		case r.Repository != "":
			image = r.Repository
		}
		outcome := r.Outcome
		if r.DeploymentOutcome != "" {
			outcome += ", " + r.DeploymentOutcome
		}
		rows = append(rows, historyRow{at: r.DeployedAt, rule: r.Rule, image: image, outcome: outcome,
			deployment: cmp.Or(r.DeploymentID, "-"),
			revision:   ecsarn.Revision(r.FromTaskDefinition) + " → " + ecsarn.Revision(r.ToTaskDefinition),
			reason:     cmp.Or(r.DeploymentReason, r.Reason)})
	}
	for _, h := range holds {
		row := historyRow{at: h.At, rule: h.Action, image: "-", deployment: "-", revision: "-"}
		switch h.Action {
		case history.HoldLifted:
			row.outcome, row.reason = "resumed", "by "+h.By
			if h.Previous != nil {
				row.reason += ", lifting " + h.Previous.String()
			}
		default:
			row.outcome, row.reason = "held", "by "+h.By+": "+h.Reason
			if h.Previous != nil {
				row.reason += " (--force, replacing " + h.Previous.String() + ")"
			}
		}
		rows = append(rows, row)
	}
	slices.SortStableFunc(rows, func(a, b historyRow) int { return b.at.Compare(a.at) })
	return rows
}
