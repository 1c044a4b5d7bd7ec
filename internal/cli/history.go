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
	output := outputFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return usageError{fmt.Sprintf("--limit %d: want 1 to 1000", *limit)}
	}
	asJSON, err := checkOutput(*output)
	if err != nil {
		return err
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
	rows = rows[:min(len(rows), *limit)]
	if asJSON {
		return writeJSON(env.Stdout, HistoryOutput{Service: key, Rows: rows})
	}
	if len(rows) == 0 {
		fmt.Fprintf(env.Stdout, "no deploys or holds recorded for %s\n", key)
		return nil
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "WHEN\tRULE\tIMAGE\tOUTCOME\tDEPLOYMENT\tREVISION\tREASON")
	for _, r := range rows {
		outcome := r.Outcome
		if r.Deployment != "" {
			outcome += ", " + r.Deployment
		}
		revision := "-"
		if r.From != "" || r.To != "" {
			revision = r.From + " → " + r.To
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.At.UTC().Format(time.RFC3339), r.Rule, cut(dash(r.Image), 60), outcome,
			dash(r.DeploymentID), revision, cut(r.Reason, 100))
	}
	return w.Flush()
}

// historyRows merges deploys (and rollbacks) with holds and resumes, newest
// first. Holds live in items of their own (history.HoldEvent), so no
// reader of deploys mistakes one for a deploy.
func historyRows(recs []history.Record, holds []history.HoldEvent) []HistoryRow {
	rows := []HistoryRow{}
	for _, r := range recs {
		var image string
		switch {
		case r.Repository != "" && r.Tag != "":
			image = r.Repository + ":" + r.Tag
		case r.Repository != "" && r.Digest != "":
			image = r.Repository + "@" + r.Digest
		case r.Repository != "":
			image = r.Repository
		}
		rows = append(rows, HistoryRow{At: r.DeployedAt.UTC(), Rule: r.Rule, Image: image, Outcome: r.Outcome,
			Deployment: r.DeploymentOutcome, DeploymentID: r.DeploymentID,
			From: ecsarn.Revision(r.FromTaskDefinition), To: ecsarn.Revision(r.ToTaskDefinition),
			Reason: cmp.Or(r.DeploymentReason, r.Reason)})
	}
	for _, h := range holds {
		row := HistoryRow{At: h.At.UTC(), Rule: h.Action}
		switch h.Action {
		case history.HoldLifted:
			row.Outcome, row.Reason = "resumed", "by "+h.By
			if h.Previous != nil {
				row.Reason += ", lifting " + h.Previous.String()
			}
		default:
			row.Outcome, row.Reason = "held", "by "+h.By+": "+h.Reason
			if h.Previous != nil {
				row.Reason += " (--force, replacing " + h.Previous.String() + ")"
			}
		}
		rows = append(rows, row)
	}
	slices.SortStableFunc(rows, func(a, b HistoryRow) int { return b.At.Compare(a.At) })
	return rows
}
