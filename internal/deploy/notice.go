package deploy

import (
	"context"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
)

// NoticeTimeout bounds each notice the deploy path sends (an SNS publish),
// on a context of its own: a notice is the last thing done for a target,
// often the fallback of a write that just failed because the target's
// context ran out (a parked item's end, a refused item's end, a history
// write), and on that context the notice would be lost too — nobody told
// the target was not deployed. The worker's Reserve keeps time for it.
const NoticeTimeout = 5 * time.Second

// noticeContext is the context a notice is sent on: ctx's values, not its
// cancellation or deadline, bounded by NoticeTimeout.
func noticeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), NoticeTimeout)
}

// ownBudget is a notifier whose every notice runs on a noticeContext: the
// sender the deploy path gives notify.EndTarget, whose rule notice follows
// the rollout's end write on the same context.
type ownBudget struct{ n Notifier }

func (o ownBudget) Notify(ctx context.Context, n notify.Notice) error {
	nctx, cancel := noticeContext(ctx)
	defer cancel()
	return o.n.Notify(nctx, n)
}
