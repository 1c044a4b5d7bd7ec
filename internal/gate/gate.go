// Package gate keeps the gates a digest passes before it deploys to a
// rule's targets or is promoted (DESIGN "Gates"): approvals, scan results
// and bakes, each a state item with its own small lifecycle in the state
// table, changed only by conditional writes, so concurrent callers and
// retries apply a transition once.
//
// Items (one table, pk/sk, TTL expires_at):
//
//	pk "gate#approval#<rule>#<digest>"  sk "approval"  pending → approved | rejected | superseded | expired
//	pk "gate#scan#<rule>#<digest>"      sk "scan"      pending → clean | blocked | failed | timed_out
//	pk "gate#bake#<rule>#<digest>"      sk "bake"      baking → promoted | not_promoted
//	pk "gate#open"                      sk "<gate>#<rule>#<digest>"  one per open gate, with its due time
//
// An open gate's index item is written with the gate and deleted with its
// end, in one transaction each, so Open and Due (pending approvals for
// status and the metric, what a sweep ends when a timer was lost) never
// read an ended gate. A gate item expires Retention after its end (or its
// due time, while open).
//
// Every transition carries a token of its own call; when DynamoDB applied
// it but the answer was lost, the SDK's retry meets its own token and
// counts as applied. A second delivery (another call) finds the gate moved
// on and is told so (applied false, or a refusal), so its caller notices
// once.
package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
)

// Kind names a gate, as items and log lines spell it.
type Kind string

const (
	KindApproval Kind = "approval"
	KindScan     Kind = "scan"
	KindBake     Kind = "bake"
)

// State is where a gate is in its lifecycle.
type State string

const (
	Pending     State = "pending"      // approval, scan
	Approved    State = "approved"     // approval
	Rejected    State = "rejected"     // approval
	Superseded  State = "superseded"   // approval: a newer push for the rule
	Expired     State = "expired"      // approval
	Clean       State = "clean"        // scan: no finding of a blocked severity
	Blocked     State = "blocked"      // scan: findings of a blocked severity
	ScanFailed  State = "failed"       // scan: the scanner could not scan the image
	TimedOut    State = "timed_out"    // scan: no result within the wait
	Baking      State = "baking"       // bake
	Promoted    State = "promoted"     // bake: ran its time with no alarm; promote
	NotPromoted State = "not_promoted" // bake: an alarm entered ALARM
)

// Open reports whether the gate has not ended.
func (s State) Open() bool { return s == Pending || s == Baking }

// Retention is how long an ended gate stays readable (status, history,
// the CLI's refusals), as deploy records do.
const Retention = history.Retention

// dynamoAPI is what the store needs of DynamoDB.
type dynamoAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Store reads and changes gates in the state table.
type Store struct {
	db    dynamoAPI
	table string
}

// NewStore returns a Store on the table.
func NewStore(db dynamoAPI, table string) *Store { return &Store{db: db, table: table} }

// Log writes one gate decision as a JSON line: msg="gate" with the rule,
// digest, gate, outcome (a State a transition reached, or what Admit
// decided: "passed", "waits", "refused") and reason.
func Log(ctx context.Context, log *slog.Logger, rule, digest string, gate Kind, outcome, reason string) {
	log.InfoContext(ctx, "gate", "rule", rule, "digest", digest, "gate", string(gate), "outcome", outcome, "reason", reason)
}

// OpenGate is one gate not ended yet, as its index item holds it.
type OpenGate struct {
	Kind     Kind      `dynamodbav:"kind"`
	Rule     string    `dynamodbav:"rule"`
	Digest   string    `dynamodbav:"digest"`
	Tag      string    `dynamodbav:"tag,omitempty"`
	PushedAt time.Time `dynamodbav:"pushed_at"`
	Due      time.Time `dynamodbav:"due"`
}

// Open lists the open gates of kind (every kind: ""), and of one rule
// when rule is set; paged, strongly consistent.
func (s *Store) Open(ctx context.Context, kind Kind, rule string) ([]OpenGate, error) {
	prefix := ""
	if kind != "" {
		prefix = string(kind) + "#"
		if rule != "" {
			prefix += rule + "#"
		}
	}
	return s.open(ctx, prefix, nil)
}

// Due lists the open gates whose time is up at now: what a sweep ends
// when their timer was lost or late.
func (s *Store) Due(ctx context.Context, now time.Time) ([]OpenGate, error) {
	return s.open(ctx, "", &now)
}

func (s *Store) open(ctx context.Context, prefix string, due *time.Time) ([]OpenGate, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(openPK)},
		ConsistentRead:            aws.Bool(true),
	}
	if prefix != "" {
		in.KeyConditionExpression = aws.String("pk = :pk AND begins_with(sk, :prefix)")
		in.ExpressionAttributeValues[":prefix"] = str(prefix)
	}
	if due != nil {
		in.FilterExpression = aws.String("due_ms <= :now")
		in.ExpressionAttributeValues[":now"] = millis(*due)
	}
	var out []OpenGate
	pages := dynamodb.NewQueryPaginator(s.db, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list open gates: %w", err)
		}
		var gs []OpenGate
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &gs); err != nil {
			return nil, fmt.Errorf("read open gates: %w", err)
		}
		out = append(out, gs...)
	}
	return out, nil
}

const openPK = "gate#open"

func gateKey(kind Kind, rule, digest string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": str("gate#" + string(kind) + "#" + rule + "#" + digest),
		"sk": str(string(kind)),
	}
}

func openKey(kind Kind, rule, digest string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(openPK), "sk": str(string(kind) + "#" + rule + "#" + digest)}
}

// start writes a new open gate (item, an already marshalled gate without
// its keys) and its index entry, unless the gate exists. It returns the
// gate as stored and whether this call created it.
func (s *Store) start(ctx context.Context, kind Kind, rule, digest string, item map[string]types.AttributeValue, open OpenGate) (map[string]types.AttributeValue, bool, error) {
	tok := lock.NewToken()
	full := maps.Clone(item)
	maps.Copy(full, gateKey(kind, rule, digest))
	full["token"] = str(tok)
	full["kind"] = str(string(kind))
	full["due_ms"] = millis(open.Due)
	full["pushed_ms"] = millis(open.PushedAt)
	full["expires_at"] = epoch(open.Due.Add(Retention))
	idx, err := s.openItem(kind, rule, digest, open)
	if err != nil {
		return nil, false, err
	}
	err = s.transact(ctx, []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(s.table), Item: full, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Put: &types.Put{TableName: aws.String(s.table), Item: idx}},
	})
	if err == nil {
		return full, true, nil
	}
	if !conditionFailed(err, 0) {
		return nil, false, fmt.Errorf("start %s gate of %s for %s: %w", kind, digest, rule, err)
	}
	got, err := s.get(ctx, kind, rule, digest)
	if err != nil {
		return nil, false, err
	}
	if got == nil { // gone between the two calls (TTL): start again next time
		return nil, false, fmt.Errorf("start %s gate of %s for %s: it existed and then did not; try again", kind, digest, rule)
	}
	// Our own write, applied once already (its answer lost)?
	return got, tokenOf(got) == tok, nil
}

func (s *Store) openItem(kind Kind, rule, digest string, open OpenGate) (map[string]types.AttributeValue, error) {
	open.Kind, open.Rule, open.Digest = kind, rule, digest
	idx, err := attributevalue.MarshalMap(open)
	if err != nil {
		return nil, fmt.Errorf("marshal open %s gate: %w", kind, err)
	}
	maps.Copy(idx, openKey(kind, rule, digest))
	idx["due_ms"] = millis(open.Due)
	idx["pushed_ms"] = millis(open.PushedAt)
	idx["expires_at"] = epoch(open.Due.Add(Retention))
	return idx, nil
}

// change is one transition of a gate: an update expression's SET part
// (and a REMOVE after it) applied when cond holds; final ends the gate (its index entry goes).
// reopen puts the gate's index entry back (a gate started again).
type change struct {
	set    string
	cond   string
	values map[string]types.AttributeValue
	final  bool
	reopen *OpenGate
}

// apply makes c in one transaction with the index entry's write, and
// returns the gate as it is after and whether this call changed it.
func (s *Store) apply(ctx context.Context, kind Kind, rule, digest string, c change) (map[string]types.AttributeValue, bool, error) {
	update := "SET #token = :tok, " + c.set
	cond := "(" + c.cond + ") OR #token = :tok"
	// Every #name stands for the attribute of that name (DynamoDB reserves
	// many plain words: state, source, block…), and only the names and
	// values the expressions use are sent, as DynamoDB requires.
	names := map[string]string{}
	for _, n := range nameRE().FindAllString(update+" "+cond, -1) {
		names[n] = n[1:]
	}
	values := map[string]types.AttributeValue{}
	given := maps.Clone(c.values)
	if given == nil {
		given = map[string]types.AttributeValue{}
	}
	given[":tok"] = str(lock.NewToken())
	for _, v := range valueRE().FindAllString(update+" "+cond, -1) {
		val, ok := given[v]
		if !ok {
			return nil, false, fmt.Errorf("change %s gate of %s for %s: no value for %s", kind, digest, rule, v)
		}
		values[v] = val
	}
	items := []types.TransactWriteItem{{Update: &types.Update{
		TableName: aws.String(s.table), Key: gateKey(kind, rule, digest),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}}}
	switch {
	case c.final:
		items = append(items, types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(s.table), Key: openKey(kind, rule, digest)}})
	case c.reopen != nil:
		idx, err := s.openItem(kind, rule, digest, *c.reopen)
		if err != nil {
			return nil, false, err
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: idx}})
	}
	err := s.transact(ctx, items)
	if err != nil && !conditionFailed(err, 0) {
		return nil, false, fmt.Errorf("change %s gate of %s for %s: %w", kind, digest, rule, err)
	}
	got, gerr := s.get(ctx, kind, rule, digest)
	if gerr != nil {
		return nil, false, gerr
	}
	return got, err == nil, nil
}

// get reads a gate item (nil: none), strongly consistent.
func (s *Store) get(ctx context.Context, kind Kind, rule, digest string) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: gateKey(kind, rule, digest), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read %s gate of %s for %s: %w", kind, digest, rule, err)
	}
	return out.Item, nil
}

// transact runs a transaction, sent again while it conflicts with another
// under way on its items (callers racing; awsenv.TransactWrite).
func (s *Store) transact(ctx context.Context, items []types.TransactWriteItem) error {
	return awsenv.TransactWrite(ctx, s.db, &dynamodb.TransactWriteItemsInput{TransactItems: items})
}

// conditionFailed reports a transaction cancelled because its i-th item's
// condition failed.
func conditionFailed(err error, i int) bool {
	var c *types.TransactionCanceledException
	return errors.As(err, &c) && i < len(c.CancellationReasons) && aws.ToString(c.CancellationReasons[i].Code) == "ConditionalCheckFailed"
}

func tokenOf(item map[string]types.AttributeValue) string {
	if t, ok := item["token"].(*types.AttributeValueMemberS); ok {
		return t.Value
	}
	return ""
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func millis(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixMilli(), 10)}
}

func epoch(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.Unix(), 10)}
}

var (
	nameRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`#[a-z_]+`) })
	valueRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`:[a-z_]+`) })
)

func timeValue(t time.Time) types.AttributeValue {
	return str(t.UTC().Format(time.RFC3339Nano))
}
