// Package metrics writes CloudWatch metrics as Embedded Metric Format log
// lines (namespace Autodeploy): CloudWatch extracts them from the log group,
// so no PutMetricData call sits on the deploy path.
package metrics

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// Namespace of every metric.
const Namespace = "Autodeploy"

// The metrics the functions write; the stack's dashboard graphs them.
const (
	Deploys               = "Deploys"        // per target and event, dimension outcome
	DeployDuration        = "DeployDuration" // milliseconds, per target
	PushToRunning         = "PushToRunning"  // milliseconds from push to a completed deployment
	DeploymentsCompleted  = "DeploymentsCompleted"
	DeploymentsFailed     = "DeploymentsFailed"
	DeploymentsRolledBack = "DeploymentsRolledBack"
	Drift                 = "Drift"            // per rule and sweep: targets found behind the newest image
	PendingApprovals      = "PendingApprovals" // per rule, at each sweep: digests that wait for a person
)

// Metric is one value; Unit is a CloudWatch unit (Count, Milliseconds…).
type Metric struct {
	Name  string
	Unit  string
	Value float64
}

// Emit writes one EMF record through log. CloudWatch files each metric
// under every dimension set: all of dims, and each rollup (a subset of
// dims' names, e.g. just "rule") for the graphs and alarms that sum over the
// rest.
func Emit(ctx context.Context, log *slog.Logger, at time.Time, dims map[string]string, rollups [][]string, ms ...Metric) {
	names := make([]string, 0, len(dims))
	for k := range dims {
		names = append(names, k)
	}
	slices.Sort(names)
	defs := make([]map[string]string, len(ms))
	attrs := []slog.Attr{}
	for i, m := range ms {
		defs[i] = map[string]string{"Name": m.Name, "Unit": m.Unit}
		attrs = append(attrs, slog.Float64(m.Name, m.Value))
	}
	for _, k := range names {
		attrs = append(attrs, slog.String(k, dims[k]))
	}
	meta := map[string]any{
		"Timestamp": at.UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  Namespace,
			"Dimensions": append([][]string{names}, rollups...),
			"Metrics":    defs,
		}},
	}
	// Past the logger's level: LOG_LEVEL=warn quiets the log, not the
	// metrics the dashboard and alarms are drawn from.
	r := slog.NewRecord(at, slog.LevelInfo, "metrics", 0)
	r.AddAttrs(append([]slog.Attr{slog.Any("_aws", meta)}, attrs...)...)
	_ = log.Handler().Handle(ctx, r)
}
