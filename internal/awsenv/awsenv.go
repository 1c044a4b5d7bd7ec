// Package awsenv builds AWS SDK clients from the standard environment
// (AWS_REGION, AWS_ENDPOINT_URL, credentials…) with the retry behaviour the
// functions need, and per-target clients that assume a role when asked.
package awsenv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// MaxAttempts bounds SDK retries of one call; past it the error surfaces and
// the invocation is retried by Lambda instead.
const MaxAttempts = 8

// Load reads the standard SDK environment and installs the retryer.
func Load(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(NewRetryer))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}

// NewRetryer is the retryer of ECS and every other client but the state
// table's: the SDK's adaptive mode per operation, which slows an operation
// down once it is throttled (RegisterTaskDefinition allows 1/s sustained)
// and forgets that after a quiet spell (see Retry.Forget), and also retries
// ECS's refusal of concurrent revisions in one family.
func NewRetryer() aws.Retryer { return Retry{Adaptive: true}.New() }

// NewStateRetryer is the state table's retryer: the same retries without
// adaptive mode's client-side rate limiter, because a lease renewal held
// back by that limiter after a throttle loses the lease, and the deploy
// holding it with it. It also retries a single write that DynamoDB refused
// for a transaction under way on its item (TransactionConflictException):
// the ends of one rollout all write its header at once.
//
// A transaction cancelled for another one on its items
// (TransactionCanceledException with a TransactionConflict reason) is not
// retried here: the SDK fills the call's ClientRequestToken once and sends
// it again on every attempt, and DynamoDB answers identical calls with one
// token, for 10 minutes after the first completed, with the result of the
// first ("multiple identical calls have the same effect as one single
// call"; nothing promises that a cancelled one runs again). The caller
// tries again with a fresh token (history.Store does, see
// IsTransactionConflict).
func NewStateRetryer() aws.Retryer { return Retry{}.New() }

// Retry is a retry policy. Backoff is the SDK's: full jitter doubling from
// Base (default 1 s) to at most Max (default 20 s); tests that shrink the
// lock's lease shrink these by as much.
//
// The SDK's retry quota is off. It fails calls without retrying once a
// client's recent calls failed often (500 tokens; a retry costs 5, a
// dropped connection 10, a success returns 1): under 40 % faults the lock's
// client ran dry ("retry quota exceeded, 1 available, 14 requested") and
// whole events failed three times over. A deployer makes a handful of
// calls per push; backoff and adaptive mode already keep it gentle.
//
// Adaptive mode is the SDK's client-side rate limiter, but one per API
// operation and only while that operation is being throttled. The SDK keeps
// one limiter per client, which, once any throttle turned it on, never turns
// off and caps every later call of the client at twice the rate it last
// measured: after the cold sweep's DescribeTaskDefinition throttles, each
// warm sweep's DescribeServices started again from half a call per second
// (TestAdaptiveLimiterIsPerOperation). ECS's buckets are per action, and a
// Lambda execution environment lives for hours, so a limiter learned from
// one operation's throttles must neither slow the others nor every later
// deploy.
type Retry struct {
	Adaptive  bool
	Base, Max time.Duration
	// Forget is how long an operation's limiter outlives its last throttle
	// (default DefaultForget).
	Forget time.Duration
}

// DefaultForget is how long an operation's adaptive limiter is kept after
// its last throttle: ECS's slowest bucket (RegisterTaskDefinition, 20 burst
// at 1/s) is full again in 20 s, its others in under 10.
const DefaultForget = 30 * time.Second

// New builds the retryer.
func (r Retry) New() aws.Retryer {
	standard := func(so *retry.StandardOptions) {
		so.MaxAttempts = MaxAttempts
		so.RateLimiter = ratelimit.None
		so.Backoff = jitterBackoff{base: cmp.Or(r.Base, time.Second), max: cmp.Or(r.Max, 20*time.Second)}
		so.Retryables = append(so.Retryables, retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if IsConcurrentRevision(err) || isSingleWriteConflict(err) {
				return aws.TrueTernary
			}
			return aws.UnknownTernary
		}))
	}
	if !r.Adaptive {
		return retry.NewStandard(standard)
	}
	return &perOperation{
		RetryerV2: retry.NewStandard(standard),
		adaptive: func() *retry.AdaptiveMode {
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, standard)
			})
		},
		forget:    cmp.Or(r.Forget, DefaultForget),
		now:       time.Now,
		limiters:  map[string]*limiter{},
		throttles: retry.IsErrorThrottles(retry.DefaultThrottles),
	}
}

// perOperation is adaptive retry with a limiter per operation, replaced by
// a fresh one (which does not limit until throttled) once the operation was
// not throttled for forget. Retries, their delays and attempts are the
// standard retryer's, which it embeds.
type perOperation struct {
	aws.RetryerV2
	adaptive  func() *retry.AdaptiveMode
	forget    time.Duration
	now       func() time.Time
	throttles retry.IsErrorThrottles

	mu       sync.Mutex
	limiters map[string]*limiter // by bucketOf(operation)
}

// limiter is one operation's adaptive mode and when it was last throttled
// (zero: never, so it does not limit).
type limiter struct {
	mode      *retry.AdaptiveMode
	throttled time.Time
}

// bucketOf is the operation whose limiter an operation shares: ECS's
// registrations and deregistrations spend one bucket.
func bucketOf(operation string) string {
	if operation == "DeregisterTaskDefinition" {
		return "RegisterTaskDefinition"
	}
	return operation
}

// GetAttemptToken waits for the operation's limiter (at once unless the
// operation is being throttled); releasing the token tells the limiter how
// the attempt went.
func (p *perOperation) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	op := bucketOf(awsmiddleware.GetOperationName(ctx))
	l := p.limiter(op)
	release, err := l.mode.GetAttemptToken(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return func(err error) error {
		if p.throttles.IsErrorThrottle(err).Bool() {
			p.mu.Lock()
			l.throttled = p.now()
			p.mu.Unlock()
		}
		return release(err)
	}, nil
}

// limiter is op's limiter: made on first use, made again once op's last
// throttle is more than forget ago.
func (p *perOperation) limiter(op string) *limiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.limiters[op]
	if !ok || (!l.throttled.IsZero() && p.now().Sub(l.throttled) > p.forget) {
		l = &limiter{mode: p.adaptive()}
		p.limiters[op] = l
	}
	return l
}

// jitterBackoff waits a random time up to base·2^(attempt-1), capped at max
// — but a single write that met a transaction waits as a conflicting
// transaction does (conflictDelay: 20 ms to 2 s): the item is busy for a
// transaction's milliseconds, not throttled, and a worker that waited the
// throttle's seconds on a rollout's hot header slowed a whole place's drain
// (BenchmarkQueuedFanOut: 1.3–1.4× its floor against ≤ 1.25).
type jitterBackoff struct{ base, max time.Duration }

func (b jitterBackoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	if isSingleWriteConflict(err) {
		return conflictDelay(attempt), nil
	}
	limit := b.max
	if attempt >= 1 && attempt < 32 {
		limit = min(b.max, b.base<<(attempt-1))
	}
	return time.Duration(rand.Float64() * float64(limit)), nil
}

// IsConcurrentRevision reports ECS's "Too many concurrent attempts to create
// a new revision of the specified family", a ClientException that is in
// truth transient.
func IsConcurrentRevision(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "ClientException" &&
		strings.Contains(apiErr.ErrorMessage(), "Too many concurrent attempts")
}

// IsTransactionConflict reports DynamoDB refusing a write for another
// transaction under way on one of its items: TransactionConflictException
// for a single write, or a transaction cancelled with TransactionConflict
// among its cancellation reasons. A transaction cancelled only for its
// conditions (ConditionalCheckFailed, None) is no conflict: it would fail
// again.
func IsTransactionConflict(err error) bool {
	if isSingleWriteConflict(err) {
		return true
	}
	var cancelled *types.TransactionCanceledException
	if errors.As(err, &cancelled) {
		for _, r := range cancelled.CancellationReasons {
			if aws.ToString(r.Code) == "TransactionConflict" {
				return true
			}
		}
	}
	return false
}

// isSingleWriteConflict reports TransactionConflictException, a single
// write (PutItem, UpdateItem, DeleteItem) refused for a transaction on its
// item: it carries no token, so the SDK may send it again as it is.
func isSingleWriteConflict(err error) bool {
	var single *types.TransactionConflictException
	return errors.As(err, &single)
}

// IsTransient reports whether an AWS error may pass by itself: throttling,
// server faults, timeouts and errors that never reached AWS. A client fault
// (bad request, access denied, not found) will fail again the same way.
func IsTransient(err error) bool {
	if IsConcurrentRevision(err) {
		return true
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return true
	}
	code := apiErr.ErrorCode()
	if _, ok := retry.DefaultThrottleErrorCodes[code]; ok {
		return true
	}
	if _, ok := retry.DefaultRetryableErrorCodes[code]; ok {
		return true
	}
	return apiErr.ErrorFault() != smithy.FaultClient
}

// Clients hands out the clients of a target's account and region: one
// config per region and role, created on first use (a role's credentials are
// cached and refreshed by the SDK), and one ECS and one SSM client on it.
type Clients struct {
	base    aws.Config
	mu      sync.Mutex
	configs map[[2]string]aws.Config
	ecs     map[[2]string]*ecs.Client
	ssm     map[[2]string]*ssm.Client
	cd      map[[2]string]*codedeploy.Client
	ecr     map[[2]string]*ecr.Client
}

// NewClients returns a client cache on top of base.
func NewClients(base aws.Config) *Clients {
	return &Clients{base: base, configs: map[[2]string]aws.Config{}, ecs: map[[2]string]*ecs.Client{}, ssm: map[[2]string]*ssm.Client{}, cd: map[[2]string]*codedeploy.Client{}, ecr: map[[2]string]*ecr.Client{}}
}

// config is the SDK config for a region ("" = the base region) and role
// ("" = the base credentials); the caller holds mu.
func (c *Clients) config(key [2]string) aws.Config {
	if cfg, ok := c.configs[key]; ok {
		return cfg
	}
	cfg := c.base.Copy()
	if key[0] != "" {
		cfg.Region = key[0]
	}
	if key[1] != "" {
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(c.base), key[1], func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "ecr-autodeploy"
		})
		cfg.Credentials = aws.NewCredentialsCache(provider)
	}
	c.configs[key] = cfg
	return cfg
}

// ECS returns the ECS client for a region and role.
func (c *Clients) ECS(region, role string) *ecs.Client {
	return cached(c, c.ecs, region, role, func(cfg aws.Config) *ecs.Client { return ecs.NewFromConfig(cfg) })
}

// SSM returns the Parameter Store client for a region and role.
func (c *Clients) SSM(region, role string) *ssm.Client {
	return cached(c, c.ssm, region, role, func(cfg aws.Config) *ssm.Client { return ssm.NewFromConfig(cfg) })
}

// CodeDeploy returns the CodeDeploy client for a region and role.
func (c *Clients) CodeDeploy(region, role string) *codedeploy.Client {
	return cached(c, c.cd, region, role, func(cfg aws.Config) *codedeploy.Client { return codedeploy.NewFromConfig(cfg) })
}

// Account is the account of cfg's credentials.
func Account(ctx context.Context, cfg aws.Config) (string, error) {
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("get caller identity: %w", err)
	}
	return aws.ToString(out.Account), nil
}

// ECR returns the ECR client for a region and role.
func (c *Clients) ECR(region, role string) *ecr.Client {
	return cached(c, c.ecr, region, role, func(cfg aws.Config) *ecr.Client { return ecr.NewFromConfig(cfg) })
}

// cached returns the client of clients for region and role, made on first use.
func cached[T any](c *Clients, clients map[[2]string]T, region, role string, newClient func(aws.Config) T) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := [2]string{region, role}
	if cl, ok := clients[key]; ok {
		return cl
	}
	cl := newClient(c.config(key))
	clients[key] = cl
	return cl
}

// StateTable is the DynamoDB client for the state table, with the state
// retryer (see NewStateRetryer).
func StateTable(cfg aws.Config) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.Retryer = NewStateRetryer() })
}
