package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// workSuffix ends the work queues' base name.
const workSuffix = "-work"

// WorkQueueBase is the name of the central place's work queue for a stack
// named stack, from which every other place's is derived
// (queue.NameFor): the stack's name and "-work", within
// queue.MaxBaseNameLen characters; a longer stack name keeps its start and
// a hash of the whole, so two long names sharing a start still differ.
// No other queue of the stack starts with it: those are named by
// CloudFormation (<stack>-<LogicalId>-<suffix>), and the policies grant
// "<base>" and "<base>-*" only.
func WorkQueueBase(stack string) string {
	if len(stack)+len(workSuffix) <= queue.MaxBaseNameLen {
		return stack + workSuffix
	}
	sum := sha256.Sum256([]byte(stack))
	hash := hex.EncodeToString(sum[:])[:8]
	keep := queue.MaxBaseNameLen - len(workSuffix) - len(hash) - 1
	return stack[:keep] + "-" + hash + workSuffix
}

// workQueues are the work queues of a stack: one per target place (the
// central one first), their dead-letter queue, and their ARN patterns.
type workQueues struct {
	base    string
	central awssqs.Queue
	byPlace []placeQueue
	dlq     awssqs.Queue
}

type placeQueue struct {
	place rules.Place
	queue awssqs.Queue
}

// newWorkQueues makes a standard queue per place of tp (the central place
// and every other target place), named by queue.NameFor, each encrypted
// with SQS-managed keys (no KMS grants), SSL only, with a visibility
// timeout of queue.Visibility and a redrive policy into one dead-letter
// queue after queue.MaxReceiveCount receives; an alarm on that queue's
// first message. One queue policy denies non-SSL requests on all of them,
// one resource instead of one per place.
func newWorkQueues(s awscdk.Stack, tp Topology, alarms awssns.ITopic) workQueues {
	wq := workQueues{base: WorkQueueBase(*s.StackName())}
	// Its name is CloudFormation's (<stack>-WorkDeadLetters…), outside the
	// work queues' name patterns: neither function is granted it.
	wq.dlq = awssqs.NewQueue(s, jsii.String("WorkDeadLetters"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	cdknag.NagSuppressions_AddResourceSuppressions(wq.dlq, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-SQS3"),
		Reason: jsii.String("This queue is itself the work queues' dead-letter queue; an alarm fires on its first message."),
	}}, jsii.Bool(false))
	queueAlarm(s, "WorkDeadLetters", wq.dlq, alarms)
	refs := []*string{wq.dlq.QueueUrl()}
	for i, p := range append([]rules.Place{tp.Central}, tp.Targets...) {
		id := "WorkQueue"
		if i > 0 {
			id = fmt.Sprintf("WorkQueue%s%s", p.Account, logicalRegion(p.Region))
		}
		q := awssqs.NewQueue(s, jsii.String(id), &awssqs.QueueProps{
			QueueName:         jsii.String(queue.NameFor(wq.base, tp.Central, p)),
			Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
			VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(queue.Visibility.Seconds())),
			RetentionPeriod:   awscdk.Duration_Days(jsii.Number(14)),
			DeadLetterQueue:   &awssqs.DeadLetterQueue{Queue: wq.dlq, MaxReceiveCount: jsii.Number(queue.MaxReceiveCount)},
		})
		if i == 0 {
			wq.central = q
		}
		wq.byPlace = append(wq.byPlace, placeQueue{place: p, queue: q})
		refs = append(refs, q.QueueUrl())
	}
	awssqs.NewCfnQueuePolicy(s, jsii.String("WorkQueuesSslOnly"), &awssqs.CfnQueuePolicyProps{
		Queues: &refs,
		PolicyDocument: awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("DenyInsecureTransport"),
				Effect:     awsiam.Effect_DENY,
				Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
				Actions:    jsii.Strings("sqs:*"),
				Resources:  &[]*string{awscdk.Fn_Sub(jsii.String(wq.arnPattern()), nil), awscdk.Fn_Sub(jsii.String(wq.arnPattern()+"-*"), nil), wq.dlq.QueueArn()},
				Conditions: &map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
			}),
		}}),
	})
	return wq
}

// logicalRegion is a region as a logical id part: eu-west-1 → EuWest1.
func logicalRegion(region string) string {
	out := make([]byte, 0, len(region))
	upper := true
	for i := 0; i < len(region); i++ {
		c := region[i]
		if c == '-' {
			upper = true
			continue
		}
		if upper && c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		upper = false
		out = append(out, c)
	}
	return string(out)
}

// arnPattern is the central work queue's ARN as an Fn::Sub string; the
// other places' queues are it with "-<account>-<region>".
func (wq workQueues) arnPattern() string {
	return "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:" + wq.base
}

// arns are every work queue's ARN, as two patterns of constant size
// whatever the number of places.
func (wq workQueues) arns() []string { return []string{wq.arnPattern(), wq.arnPattern() + "-*"} }

// mapTo reads each place's queue into fn: batches of queue.BatchSize,
// ReportBatchItemFailures (only the failed items return), at most
// concurrency invocations per place. The grants the mappings need are
// grantConsume's.
func (wq workQueues) mapTo(s awscdk.Stack, fn awslambda.Function, concurrency int) {
	for i, pq := range wq.byPlace {
		id := "WorkMapping"
		if i > 0 {
			id = fmt.Sprintf("WorkMapping%s%s", pq.place.Account, logicalRegion(pq.place.Region))
		}
		awslambda.NewEventSourceMapping(s, jsii.String(id), &awslambda.EventSourceMappingProps{
			Target:                  fn,
			EventSourceArn:          pq.queue.QueueArn(),
			BatchSize:               jsii.Number(queue.BatchSize),
			ReportBatchItemFailures: jsii.Bool(true),
			MaxConcurrency:          jsii.Number(float64(concurrency)),
		})
	}
}

// grantConsume lets the worker's role take the work queues' messages: what
// the event source mapping does (receive, delete, read the attributes) and
// the worker's own backoff (change a message's visibility), on the work
// queues only. It goes to the role's default policy, on which the function
// (and so each mapping, which names it) depends: CloudFormation checks the
// role's permissions when it creates a mapping.
func (wq workQueues) grantConsume(role awsiam.Role) {
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ConsumeWorkQueues"),
		Actions:   jsii.Strings("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"),
		Resources: subs(wq.arns()),
	}))
	wq.suppressPatterns(role)
}

// grantSend lets the intake's role send work items (SendMessageBatch is
// authorised as sqs:SendMessage) to the work queues only.
func (wq workQueues) grantSend(role awsiam.Role) {
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("SendWorkItems"),
		Actions:   jsii.Strings("sqs:SendMessage"),
		Resources: subs(wq.arns()),
	}))
	wq.suppressPatterns(role)
}

func (wq workQueues) suppressPatterns(role awsiam.Role) {
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("The work queues are one per target place, named " + wq.base + " and " + wq.base + "-<account>-<region>: " +
			"one pattern instead of a list that grows with the places; no other queue's name starts with it."),
		AppliesTo: &[]any{"Resource::arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:" + wq.base + "-*"},
	}}, jsii.Bool(true))
}

// checkWorkConcurrency bounds the workConcurrency knob by Lambda's limits
// on an event source mapping's MaximumConcurrency; 0 is the default.
func checkWorkConcurrency(n int) (int, error) {
	if n == 0 {
		return queue.MaximumConcurrency, nil
	}
	if n < queue.MinMaximumConcurrency || n > queue.MaxMaximumConcurrency {
		return 0, fmt.Errorf("workConcurrency %d: an event source mapping's MaximumConcurrency is %d to %d (default %d, from ECS's registration bucket per place)",
			n, queue.MinMaximumConcurrency, queue.MaxMaximumConcurrency, queue.MaximumConcurrency)
	}
	return n, nil
}
