package cli

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/redrive"
)

// RulesSHA256Env is the variable the stack sets on every function: the
// SHA-256 of the rules file bundled beside its bootstrap (infra/stack
// names it too; the CLI does not link the CDK to share the constant).
const RulesSHA256Env = "AUTODEPLOY_RULES_SHA256"

// deployedRulesCheck bounds the two calls of the comparison: it is a
// courtesy to the command, which must not wait on it.
const deployedRulesCheck = 5 * time.Second

// once1 makes one attempt: an endpoint that refuses the connection is
// said at once rather than retried while the command waits.
func once1(o *cloudformation.Options) { o.RetryMaxAttempts = 1 }

// lambdaConfigAPI is the one Lambda call the comparison makes.
type lambdaConfigAPI interface {
	GetFunctionConfiguration(ctx context.Context, in *lambda.GetFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error)
}

// deployedRules adds --stack and --function to a command that decides by
// the rules file *config (status, plan, reconcile) and returns env with
// its AWS loader wrapped, so that the first config the command loads —
// after its own flags are checked, before its first call — also compares
// the local file with the one the deployed functions run, and says on
// stderr when they differ ("…: deploy it, or " + consequence) or when it
// could not check and why. It never fails the command: the operator may
// lack the permission, or run against an emulator with no stack, and the
// command is still worth running. One call per command keeps it out of
// the commands' own code.
func deployedRules(fs *flag.FlagSet, env Env, config *string, consequence string) Env {
	stack := fs.String("stack", "", "the stack whose deployer's rules file is compared with yours (default $AUTODEPLOY_STACK or "+defaultStack+")")
	function := fs.String("function", "", "the deployer's name or ARN, instead of the stack's, for that comparison")
	load := env.AWS
	out, getenv := env.Stderr, env.Getenv
	var once sync.Once
	env.AWS = func(ctx context.Context) (aws.Config, error) {
		cfg, err := load(ctx)
		if err != nil {
			return cfg, err
		}
		once.Do(func() {
			local, err := os.ReadFile(*config)
			if err != nil {
				return // the command itself says why it cannot read the file
			}
			ctx, cancel := context.WithTimeout(ctx, deployedRulesCheck)
			defer cancel()
			name := cmp.Or(*stack, getenv("AUTODEPLOY_STACK"), defaultStack)
			if line := compareDeployedRules(ctx, cloudformation.NewFromConfig(cfg, once1), lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.RetryMaxAttempts = 1 }), name, *function, *config, local, consequence); line != "" {
				fmt.Fprintln(out, line)
			}
		})
		return cfg, nil
	}
	return env
}

// compareDeployedRules is the line to print: "" when the deployed
// deployer runs the local file, a warning when it runs another, a note
// when it could not be read. function, when set, names the deployer
// instead of stack's output.
func compareDeployedRules(ctx context.Context, stacks cfnAPI, functions lambdaConfigAPI, stack, function, path string, local []byte, consequence string) string {
	const unchecked = "note: your rules file was not compared with the deployed one: "
	if function == "" {
		outputs, err := stackOutputs(ctx, stacks, stack)
		if err != nil {
			return unchecked + stackReason(stack, err)
		}
		if function = outputs[redrive.OutputDeployerFunction]; function == "" {
			return unchecked + fmt.Sprintf("stack %s has no output %s (deploy the current stack, or pass --function)", stack, redrive.OutputDeployerFunction)
		}
	}
	out, err := functions.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(function)})
	if err != nil {
		return unchecked + functionReason(function, err)
	}
	var deployed string
	if e := out.Environment; e != nil {
		deployed = e.Variables[RulesSHA256Env]
	}
	if deployed == "" {
		return unchecked + fmt.Sprintf("the deployer %s records no %s (its stack predates it: deploy the current stack)", function, RulesSHA256Env)
	}
	sum := sha256.Sum256(local)
	if mine := hex.EncodeToString(sum[:]); !strings.EqualFold(mine, deployed) {
		return fmt.Sprintf("warning: the deployed functions run another rules file (sha256 %s…); yours, %s, is %s…: deploy it, or %s",
			short(deployed), path, short(mine), consequence)
	}
	return ""
}

// short is a hash's first twelve hex digits, as git shortens commits.
func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// stackReason says why the stack's outputs were not read.
func stackReason(stack string, err error) string {
	var api smithy.APIError
	switch {
	case errors.As(err, &api) && api.ErrorCode() == "ValidationError" && strings.Contains(api.ErrorMessage(), "does not exist"):
		return fmt.Sprintf("no stack %s here (--stack or AUTODEPLOY_STACK names another; --function names the deployer)", stack)
	case denied(err):
		return fmt.Sprintf("no permission to read stack %s (cloudformation:DescribeStacks; or pass --function)", stack)
	}
	return fmt.Sprintf("stack %s was not read: %s", stack, reasonOf(err))
}

// functionReason says why the deployer's configuration was not read.
func functionReason(function string, err error) string {
	var api smithy.APIError
	switch {
	case errors.As(err, &api) && api.ErrorCode() == "ResourceNotFoundException":
		return fmt.Sprintf("no function %s here (--function names another)", function)
	case denied(err):
		return fmt.Sprintf("no permission to read function %s (lambda:GetFunctionConfiguration)", function)
	}
	return fmt.Sprintf("function %s was not read: %s", function, reasonOf(err))
}

func denied(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && isDenied(api.ErrorCode())
}

// reasonOf is the service's own message when there is one (not the SDK's
// "operation error …" wrapping), else what failed.
func reasonOf(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return cmp.Or(api.ErrorMessage(), api.ErrorCode())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within " + deployedRulesCheck.String()
	}
	// Not the SDK's "operation error Lambda: …, https response error …":
	// what went wrong underneath (a refused connection, say).
	var op *smithy.OperationError
	if errors.As(err, &op) && op.Err != nil {
		return innermost(op.Err)
	}
	return err.Error()
}
