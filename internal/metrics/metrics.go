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

// Metric is one value; Unit is a CloudWatch unit (Count, Milliseconds…).
type Metric struct {
	Name  string
	Unit  string
	Value float64
}

// Emit writes one EMF record with the given dimensions through log.
func Emit(ctx context.Context, log *slog.Logger, at time.Time, dims map[string]string, ms ...Metric) {
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
			"Dimensions": [][]string{names},
			"Metrics":    defs,
		}},
	}
	log.LogAttrs(ctx, slog.LevelInfo, "metrics", append([]slog.Attr{slog.Any("_aws", meta)}, attrs...)...)
}
