package worker

import (
	"context"
	"log/slog"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// cleanup runs one cleanup item within reconcile.CleanupBudget calls of
// ECS's register bucket, and says whether it must be received again. It
// takes no service's lock. A throttle ends it without a retry: the item
// did what the bucket allowed, and the next sweep sends what is left (its
// describes show the family not clean). Any other failure returns it to the
// queue, backed off as a deploy item is; a redelivery lists the family
// again and deregisters nothing twice. Every action is the library's
// msg="cleanup" line.
func (h *Handler) cleanup(ctx context.Context, log *slog.Logger, c work.Cleanup) (retry bool) {
	if h.Cleanup == nil {
		log.ErrorContext(ctx, "cleanup item refused: this worker runs no clean-up", "family", c.Family,
			"account", c.Account, "region", c.Region, "rules", c.Rules, "origin", c.Origin)
		return true
	}
	res, err := h.Cleanup.Run(ctx, c, cleanup.NewBudget(reconcile.CleanupBudget))
	if err != nil {
		log.WarnContext(ctx, "cleanup item failed; it returns to the queue", "family", c.Family, "account", c.Account,
			"region", c.Region, "rules", c.Rules, "origin", c.Origin, "error", err.Error())
		return true
	}
	log.InfoContext(ctx, "cleanup item done", "family", c.Family, "account", c.Account, "region", c.Region,
		"rules", c.Rules, "origin", c.Origin, "deregistered", len(res.Deregistered), "deleted", len(res.Deleted),
		"left", len(res.Left)+len(res.LeftToDelete), "throttled", res.Throttled)
	return false
}
