package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/redrive"
)

// deployerStack is a stand-in for the stack as the CLI reads it: a
// deployer carrying the rules file's hash (sha == "": none, as a stack
// from before it), named by the stack's output when output is set.
// moto's CloudFormation creates the role and the function; its
// GetFunctionConfiguration answers without running any code.
func deployerStack(t *testing.T, stacks *cloudformation.Client, stack, function, sha string, output bool) {
	t.Helper()
	vars := map[string]string{"AUTODEPLOY_TABLE": "autodeploy"}
	if sha != "" {
		vars[RulesSHA256Env] = sha
	}
	tmpl := map[string]any{"Resources": map[string]any{
		"Role": map[string]any{"Type": "AWS::IAM::Role", "Properties": map[string]any{"RoleName": function + "-role",
			"AssumeRolePolicyDocument": map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
				"Effect": "Allow", "Principal": map[string]any{"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}}}}},
		"Deployer": map[string]any{"Type": "AWS::Lambda::Function", "Properties": map[string]any{"FunctionName": function,
			"Runtime": "provided.al2023", "Handler": "bootstrap", "Role": map[string]any{"Fn::GetAtt": []string{"Role", "Arn"}},
			"Code": map[string]any{"ZipFile": "stand-in"}, "Environment": map[string]any{"Variables": vars}}},
	}}
	if output {
		tmpl["Outputs"] = map[string]any{redrive.OutputDeployerFunction: map[string]any{"Value": map[string]any{"Ref": "Deployer"}}}
	}
	body, err := json.Marshal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stacks.CreateStack(context.Background(), &cloudformation.CreateStackInput{StackName: aws.String(stack), TemplateBody: aws.String(string(body))}); err != nil {
		t.Fatal(err)
	}
}

func TestDeployedRules(t *testing.T) {
	t.Parallel()
	s := setup(t)
	local, err := os.ReadFile(s.rules)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(local)
	mine := hex.EncodeToString(sum[:])
	other := strings.Repeat("ab12", 16)
	cfg := s.moto.AWSConfig()
	stacks, functions := cloudformation.NewFromConfig(cfg), lambda.NewFromConfig(cfg)
	deployerStack(t, stacks, "Same", "same-deployer", mine, true)
	deployerStack(t, stacks, "Other", "other-deployer", other, true)
	deployerStack(t, stacks, "Old", "old-deployer", "", true)
	deployerStack(t, stacks, "NoOutput", "lonely-deployer", other, false)

	differs := "warning: the deployed functions run another rules file (sha256 ab12ab12ab12…); yours, " + s.rules + ", is " + mine[:12] +
		"…: deploy it, or this plan is not what they do"
	const unchecked = "note: your rules file was not compared with the deployed one: "
	tests := []struct {
		name, stack, function, want string
	}{
		{"the deployed file is yours", "Same", "", ""},
		{"the stack's deployer runs another", "Other", "", differs},
		{"--function names one that runs another", "", "other-deployer", differs},
		{"--function names one that runs yours", "Other", "same-deployer", ""},
		{"no stack", "EcrAutodeploy", "", unchecked + "no stack EcrAutodeploy here (--stack or AUTODEPLOY_STACK names another; --function names the deployer)"},
		{"a stack without the output", "NoOutput", "", unchecked + "stack NoOutput has no output DeployerFunctionName (deploy the current stack, or pass --function)"},
		{"no such function", "", "gone", unchecked + "no function gone here (--function names another)"},
		{"a deployer from before the hash", "Old", "", unchecked + "the deployer old-deployer records no AUTODEPLOY_RULES_SHA256 (its stack predates it: deploy the current stack)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := compareDeployedRules(context.Background(), stacks, functions, tc.stack, tc.function, s.rules, local, "this plan is not what they do")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("line (-want +got):\n%s", diff)
			}
		})
	}

	// Through the commands: one line on stderr, stdout as it was, the exit
	// code the command's own.
	for _, args := range [][]string{
		{"status", "--config", s.rules, "--stack", "Other"},
		{"reconcile", "--dry-run", "--config", s.rules, "--function", "other-deployer"},
		{"plan", "--rule", "web-staging", "--tag", "main-missing", "--config", s.rules, "--stack", "Other"},
	} {
		r := cli(t, s.moto, s.table, args...)
		if n := strings.Count(r.stderr, "warning: the deployed functions run another rules file (sha256 ab12ab12ab12…)"); n != 1 {
			t.Errorf("%s: %d warnings, want 1:\n%s", args[0], n, r.stderr)
		}
		if args[0] != "plan" && r.code != 0 {
			t.Errorf("%s: %+v", args[0], r)
		}
	}
	if r := cli(t, s.moto, s.table, "status", "--config", s.rules); r.code != 0 ||
		!strings.Contains(r.stderr, unchecked+"no stack EcrAutodeploy here") {
		t.Errorf("status with no stack: %+v", r)
	}
	if r := cli(t, s.moto, s.table, "status", "--config", s.rules, "--stack", "Same"); r.code != 0 || strings.Contains(r.stderr, "rules file") {
		t.Errorf("status with the deployed file: %+v", r)
	}
}
