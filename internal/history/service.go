package history

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
)

// ServiceState is what a service's state item (pk "service#<key>", sk
// "state") remembers besides its lock: enough for a deploy to decide, with
// no call beyond the one that locks, whether a retry must repair history,
// repeat a failure report, or stay away from a digest that failed there.
type ServiceState struct {
	// FailedDigests are the digests whose latest deployment on the service
	// ended failed or rolled back (the watcher keeps this set).
	FailedDigests []string `dynamodbav:"failed_digests,stringset,omitempty"`
	// LastTaskDefinition is the revision of the latest deploy recorded.
	LastTaskDefinition string `dynamodbav:"last_task_definition,omitempty"`
	// LastFailures holds, per rule, "<event id>#<rule>" of that rule's
	// latest permanent failure recorded and notified, so a retry or the next
	// sweep of that event reports it no more. Per rule: two rules on two
	// containers of one service would otherwise overwrite each other's, and
	// each failure be reported again on every sweep. Stored as one attribute
	// per rule (last_failure#<rule>), see stateOf.
	LastFailures map[string]string `dynamodbav:"-"`
	// Hold, when set, stops pushes, promotions and sweeps on the service.
	Hold *Hold `dynamodbav:"hold,omitempty"`
	// Queued is the latest work item a sweep queued for the service (see
	// Store.NoteQueued).
	Queued *Queued `dynamodbav:"queued,omitempty"`
	// UnderWay are the deployment ids of the service's deploys recorded and
	// not ended yet (Finish adds one, SetOutcome removes it), so a deploy
	// looks for deployments to supersede only when one may be under way.
	UnderWay []string `dynamodbav:"under_way,stringset,omitempty"`
}

// OthersUnderWay reports whether a deployment other than own may be under
// way on the service.
func (s ServiceState) OthersUnderWay(own string) bool {
	return slices.ContainsFunc(s.UnderWay, func(id string) bool { return id != own })
}

// Hold is an operator's stop on a service's automation.
type Hold struct {
	By     string    `dynamodbav:"by"`
	At     time.Time `dynamodbav:"at"`
	Reason string    `dynamodbav:"reason"`
}

// String is the hold as a skip reason says it: it begins "held".
func (h *Hold) String() string {
	if h == nil {
		return ""
	}
	return fmt.Sprintf("held by %s since %s: %s", h.By, h.At.UTC().Format(time.RFC3339), h.Reason)
}

// DigestFailed reports whether digest's latest deployment here failed.
func (s ServiceState) DigestFailed(digest string) bool {
	return slices.Contains(s.FailedDigests, digest)
}

// FailureKey names one event's permanent failure under one rule.
func FailureKey(eventID, rule string) string { return eventID + "#" + rule }

// Reported reports whether this event's permanent failure under rule was
// already recorded and notified.
func (s ServiceState) Reported(eventID, rule string) bool {
	return s.LastFailures[rule] == FailureKey(eventID, rule)
}

// failureAttr is the state item's attribute of one rule's last failure.
func failureAttr(rule string) string { return "last_failure#" + rule }

// legacyFailureAttr is the one last failure of every rule that versions
// before per-rule failures kept: "<event id>#<rule>".
const legacyFailureAttr = "last_failure"

// stateOf reads a state item.
func stateOf(item map[string]types.AttributeValue) (ServiceState, error) {
	var st ServiceState
	if err := attributevalue.UnmarshalMap(item, &st); err != nil {
		return st, err
	}
	for name, v := range item {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			continue
		}
		rule, per := strings.CutPrefix(name, failureAttr(""))
		if !per && name == legacyFailureAttr {
			if i := strings.LastIndex(s.Value, "#"); i >= 0 {
				rule = s.Value[i+1:]
			}
		} else if !per {
			continue
		}
		if st.LastFailures == nil {
			st.LastFailures = map[string]string{}
		}
		if _, seen := st.LastFailures[rule]; !seen || per {
			st.LastFailures[rule] = s.Value
		}
	}
	return st, nil
}

func stateKey(serviceKey string) lock.Key { return lock.Key{PK: "service#" + serviceKey, SK: "state"} }

// Held is a service's lock, taken, with the state it guards.
type Held interface {
	// State is the service's state as it stood when the lock was taken.
	State() ServiceState
	// Check is nil while the lock is surely held; check before each write.
	Check() error
	// Finish writes rec and releases the lock in one DynamoDB call.
	Finish(ctx context.Context, rec Record) error
	// Release releases the lock, writing nothing else.
	Release(ctx context.Context) error
	// TookOver is the holder whose lease this one took over when it died
	// (or released it just then); "" when the lock was free at once. A
	// holder of this very event and rule is an earlier try of it that may
	// have deployed and died: a redrive or a sweep's new item for it arrives
	// as a first receive.
	TookOver() string
}

// Services takes services' locks on their state items.
type Services struct {
	locks *lock.Locker
	store *Store
}

// NewServices returns Services on the store's table. A service's state
// item never expires: a hold must outlast any quiet spell of the service,
// and a failed digest's mark must outlive the chance that it is still the
// newest image (a sweep would deploy it again the day the mark expired).
// It is one small item per service the rules ever named; the locker
// keeps it without an expiry.
func NewServices(locks *lock.Locker, store *Store) *Services {
	return &Services{locks: locks, store: store}
}

// Take locks the service and reads its state, in one call.
func (s *Services) Take(ctx context.Context, serviceKey, holder string) (Held, error) {
	lease, err := s.locks.Acquire(ctx, stateKey(serviceKey), holder)
	if err != nil {
		return nil, err
	}
	h := &heldLock{lease: lease, store: s.store}
	if h.state, err = stateOf(lease.Item); err != nil {
		_ = lease.Release(ctx)
		return nil, fmt.Errorf("read state of %s: %w", serviceKey, err)
	}
	return h, nil
}

type heldLock struct {
	lease *lock.Lease
	store *Store
	state ServiceState
}

func (h *heldLock) State() ServiceState               { return h.state }
func (h *heldLock) Check() error                      { return h.lease.Check() }
func (h *heldLock) Release(ctx context.Context) error { return h.lease.Release(ctx) }
func (h *heldLock) TookOver() string                  { return h.lease.TookOver }

// Finish writes the record, notes it on the state item and releases the
// lock in one transaction. When the lock was lost meanwhile, the record and
// the note are still written (without the release): history is never
// dropped for it. When the write fails, the lock is released all the same,
// so the retry that will record it need not wait out the lease.
func (h *heldLock) Finish(ctx context.Context, rec Record) error {
	items, err := h.store.recordItems(rec)
	if err != nil {
		_ = h.lease.Release(ctx)
		return err
	}
	set, names, values := "SET last_task_definition = :td", map[string]string(nil), map[string]types.AttributeValue{
		":td": &types.AttributeValueMemberS{Value: rec.ToTaskDefinition},
	}
	if rec.Outcome == Failed {
		set, names, values = "SET #lf = :lf", map[string]string{"#lf": failureAttr(rec.Rule)}, map[string]types.AttributeValue{
			":lf": &types.AttributeValueMemberS{Value: FailureKey(rec.EventID, rec.Rule)},
		}
	} else if rec.DeploymentID != "" && rec.DeploymentOutcome == "" {
		set += " ADD under_way :uw"
		values[":uw"] = &types.AttributeValueMemberSS{Value: []string{rec.DeploymentID}}
	}
	release := h.lease.ReleaseUpdate(set, names, values)
	// Through transact: the watcher ending a deployment of this service
	// writes its state item too, and DynamoDB cancels a transaction that
	// meets another instead of queueing it.
	err = h.store.transact(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: append(items, release)})
	var cancelled *types.TransactionCanceledException
	if errors.As(err, &cancelled) && lockConditionFailed(cancelled, len(items)) {
		note := h.store.stateUpdate(rec.serviceKey(), set, values)
		note.Update.ExpressionAttributeNames = names
		err = h.store.transact(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: append(items, note)})
	} else if err != nil {
		_ = h.lease.Release(ctx)
	}
	if err != nil {
		return fmt.Errorf("write history of %s and release its lock: %w", rec.serviceKey(), err)
	}
	return nil
}

// stateUpdate is an unconditional update of a service's state item.
func (w *Store) stateUpdate(serviceKey, expr string, values map[string]types.AttributeValue) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{
		TableName:                 aws.String(w.table),
		Key:                       stateKey(serviceKey).Attributes(),
		UpdateExpression:          aws.String(expr),
		ExpressionAttributeValues: values,
	}}
}

// lockConditionFailed reports whether the transaction failed on the lock's
// condition, its item at index i.
func lockConditionFailed(c *types.TransactionCanceledException, i int) bool {
	return i < len(c.CancellationReasons) && aws.ToString(c.CancellationReasons[i].Code) == "ConditionalCheckFailed"
}
