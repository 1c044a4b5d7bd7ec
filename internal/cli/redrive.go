package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/redrive"
)

// defaultStack is the stack name `make deploy` uses.
const defaultStack = "EcrAutodeploy"

type namedQueue struct {
	name, url string
	work      bool // the work queues' dead-letter queue: items go back to their work queue
}

func redriveCmd(ctx context.Context, args []string, env Env) error {
	fs := flags("redrive", env)
	queue := fs.String("queue", "", "push (events EventBridge could not deliver), deployer (events the deployer failed) or work (work items the worker did not finish); default all three")
	stack := fs.String("stack", "", "the stack to read queues and the deployer from (default $AUTODEPLOY_STACK or "+defaultStack+")")
	queueURL := fs.String("queue-url", "", "a queue URL, instead of the stack's (with --queue work: the work dead-letter queue's)")
	function := fs.String("function", "", "the deployer's name or ARN, instead of the stack's")
	dryRun := fs.Bool("dry-run", false, "only list what would be sent; nothing is invoked, sent or deleted")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *queue != "" && *queue != "push" && *queue != "deployer" && *queue != "work" {
		return usageError{fmt.Sprintf("--queue %q: want push, deployer or work", *queue)}
	}
	if *queueURL != "" && *queue != "" && *queue != "work" {
		return usageError{"--queue push|deployer and --queue-url exclude each other"}
	}
	cfg, err := env.AWS(ctx)
	if err != nil {
		return err
	}
	work := *queue == "work"
	var queues []namedQueue
	if *queueURL != "" {
		queues = []namedQueue{{name: cmp.Or(*queue, "queue"), url: *queueURL, work: work}}
	}
	// A work queue needs no deployer: its items go back to the work queues.
	needFunction := *function == "" && !*dryRun && !work
	if *queueURL == "" || needFunction {
		name := cmp.Or(*stack, env.Getenv("AUTODEPLOY_STACK"), defaultStack)
		outputs, err := stackOutputs(ctx, cloudformation.NewFromConfig(cfg), name)
		if err != nil {
			return err
		}
		if *function == "" {
			*function = outputs[redrive.OutputDeployerFunction]
		}
		if *queueURL == "" {
			for _, q := range []namedQueue{{name: "push", url: outputs[redrive.OutputPushEventsQueue]}, {name: "deployer", url: outputs[redrive.OutputDeployerFailedQueue]},
				{name: "work", url: outputs[redrive.OutputWorkDeadLetterQueue], work: true}} {
				switch {
				case *queue == "" && q.work && q.url == "":
					// A stack from before the work queues: nothing parked there.
				case *queue == "" || *queue == q.name:
					queues = append(queues, q)
				}
			}
		}
		for _, q := range queues {
			if q.url == "" {
				return fmt.Errorf("stack %s has no output for the %s queue: deploy the current stack, or pass --queue-url", name, q.name)
			}
		}
		if needFunction && *function == "" && slices.ContainsFunc(queues, func(q namedQueue) bool { return !q.work }) {
			return fmt.Errorf("stack %s has no output %s: deploy the current stack, or pass --function", name, redrive.OutputDeployerFunction)
		}
	}
	client := sqs.NewFromConfig(cfg)
	r := &redrive.Redriver{SQS: client, Lambda: lambda.NewFromConfig(cfg), Function: *function, DryRun: *dryRun}
	w := &redrive.WorkRedriver{SQS: client, DryRun: *dryRun}
	left := 0
	for _, q := range queues {
		var rep redrive.Report
		var err error
		if q.work {
			rep, err = w.Run(ctx, q.url)
		} else {
			rep, err = r.Run(ctx, q.url)
		}
		printReport(env.Stdout, q, rep, *dryRun)
		if err != nil {
			return err
		}
		left += len(rep.Left)
	}
	if left > 0 && !*dryRun {
		return fmt.Errorf("%d message(s) left in the queues: see why above", left)
	}
	return nil
}

func printReport(w io.Writer, q namedQueue, rep redrive.Report, dryRun bool) {
	// A dry run keeps every message; of them, it says which a redrive
	// would send and which it would leave (unreadable, not ours).
	wouldSend := func(it redrive.Item) bool { return strings.HasPrefix(it.Result, "would send") }
	if dryRun {
		send := 0
		for _, it := range rep.Left {
			if wouldSend(it) {
				send++
			}
		}
		fmt.Fprintf(w, "%s queue (%s): %d would be sent, %d left (dry run: nothing is sent or deleted)\n", q.name, q.url, send, len(rep.Left)-send)
	} else {
		fmt.Fprintf(w, "%s queue (%s): %d moved, %d left\n", q.name, q.url, len(rep.Moved), len(rep.Left))
	}
	for _, group := range []struct {
		label string
		items []redrive.Item
	}{{"moved", rep.Moved}, {"left", rep.Left}} {
		for _, it := range group.items {
			label := group.label
			if dryRun && wouldSend(it) {
				label = "send"
			}
			fmt.Fprintf(w, "  %-5s  %s  [message %s]\n", label, it.Event, it.MessageID)
			if it.Parked != "" {
				fmt.Fprintf(w, "         parked: %s\n", it.Parked)
			}
			fmt.Fprintf(w, "         %s\n", it.Result)
		}
	}
}

type cfnAPI interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

func stackOutputs(ctx context.Context, client cfnAPI, name string) (map[string]string, error) {
	out, err := client.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("describe stack %s (--stack or AUTODEPLOY_STACK names it): %w", name, err)
	}
	if len(out.Stacks) == 0 {
		return nil, fmt.Errorf("stack %s not found", name)
	}
	outputs := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return outputs, nil
}
