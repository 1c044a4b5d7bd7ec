package rules

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// replaced are the package-level expressions the loader compiled at init
// before syntax.go, each beside the check that replaced it: both must agree
// on every input.
var replaced = []struct {
	name  string
	expr  string
	check func(string) bool
}{
	{"rule name", `^[a-z0-9-]{1,64}$`, isRuleName},
	{"ECS name", `^[A-Za-z0-9_-]{1,255}$`, isECSName},
	{"account", `^[0-9]{12}$`, isAccount},
	{"docker tag", `^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`, isDockerTag},
	{"CodeDeploy name", `^[A-Za-z0-9._+-]{1,100}$`, isCodeDeployName},
	{"role ARN", `^arn:aws[a-z-]*:iam::([0-9]{12}):role/[\w+=,.@/-]{1,512}$`, func(s string) bool { _, ok := roleARNAccount(s); return ok }},
	{"pass role", `^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/*-]{1,512}$`, isPassRole},
	{"Lambda function", `^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:)?[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]{1,128})?$`, isLambdaFunction},
}

// syntaxInputs are strings at and around every boundary the expressions
// draw: each length limit, each character class's edges, the ARN shapes
// with names one short of, at and one past their limits, non-ASCII and
// invalid UTF-8, newlines where `$` might be taken for end of line.
func syntaxInputs() []string {
	in := []string{"", "-", "_", ".", "+", "$", "*", "/", ":", "a", "A", "0", "é", "\xff", "a\n", "\na", "a b", "ab\x00"}
	for _, c := range " !\"#$%&'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~\x7f" {
		in = append(in, string(c), "a"+string(c), string(c)+"a", "x"+string(c)+"y")
	}
	for _, n := range []int{11, 12, 13, 63, 64, 65, 99, 100, 101, 127, 128, 129, 254, 255, 256, 511, 512, 513} {
		for _, c := range []string{"a", "A", "0", "-", "_", "."} {
			in = append(in, strings.Repeat(c, n), "a"+strings.Repeat(c, n-1), strings.Repeat(c, n-1)+"é")
		}
	}
	for _, name := range []string{"r", "web", "a/b-c_d", "path/to/role", "x*", strings.Repeat("n", 511), strings.Repeat("n", 512), strings.Repeat("n", 513),
		"p/" + strings.Repeat("n", 510), "p/" + strings.Repeat("n", 511), "bad:name", "na me", ""} {
		for _, prefix := range []string{"arn:aws:iam::123456789012:role/", "arn:aws-cn:iam::123456789012:role/", "arn:aws-us-gov:iam::123456789012:role/",
			"arn:aws:iam::12345678901:role/", "arn:aws:iam::1234567890123:role/", "arn:aws:iam:eu-west-1:123456789012:role/", "arn:aws:iam::123456789012:user/",
			"arn:AWS:iam::123456789012:role/", "xarn:aws:iam::123456789012:role/"} {
			in = append(in, prefix+name, prefix+name+"\n")
		}
	}
	for _, fn := range []string{"f", "my-func_1", strings.Repeat("f", 63), strings.Repeat("f", 64), strings.Repeat("f", 65), "f.g", "f$g"} {
		for _, suffix := range []string{"", ":1", ":live", ":$LATEST", ":" + strings.Repeat("v", 127), ":" + strings.Repeat("v", 128), ":" + strings.Repeat("v", 129), ":", "::a", ":a:b", ":a.b"} {
			for _, prefix := range []string{"", "arn:aws:lambda:eu-west-1:123456789012:function:", "arn:aws-cn:lambda:cn-north-1:123456789012:function:",
				"arn:aws:lambda:eu-west-1:12345678901:function:", "arn:aws:lambda::123456789012:function:", "arn:aws:lambda:EU:123456789012:function:",
				"arn:aws:lambda:eu-west-1:123456789012:func:"} {
				in = append(in, prefix+fn+suffix)
			}
		}
	}
	return in
}

func TestSyntaxChecksAgreeWithTheirExpressions(t *testing.T) {
	inputs := syntaxInputs()
	for _, c := range replaced {
		t.Run(c.name, func(t *testing.T) {
			re := regexp.MustCompile(c.expr)
			var disagree []string
			matched := 0
			for _, s := range inputs {
				want := re.MatchString(s)
				if want {
					matched++
				}
				if got := c.check(s); got != want {
					disagree = append(disagree, s)
				}
			}
			if diff := cmp.Diff([]string(nil), disagree); diff != "" {
				t.Errorf("inputs the check decides otherwise than %s (-want +got):\n%s", c.expr, diff)
			}
			if matched == 0 || matched == len(inputs) {
				t.Errorf("%d of %d inputs match %s: the corpus does not exercise it", matched, len(inputs), c.expr)
			}
		})
	}
}

func TestRoleARNAccount(t *testing.T) {
	tests := []struct {
		arn     string
		account string
		ok      bool
	}{
		{"arn:aws:iam::123456789012:role/deploy", "123456789012", true},
		{"arn:aws-cn:iam::210987654321:role/path/to/deploy", "210987654321", true},
		{"arn:aws:iam::123456789012:role/" + strings.Repeat("n", 513), "", false},
		{"arn:aws:iam::123456789012:user/deploy", "", false},
	}
	for _, tt := range tests {
		account, ok := roleARNAccount(tt.arn)
		if diff := cmp.Diff([]any{tt.account, tt.ok}, []any{account, ok}); diff != "" {
			t.Errorf("roleARNAccount(%.60q) (-want +got):\n%s", tt.arn, diff)
		}
	}
}

// FuzzSyntaxChecks holds every check to its expression on any input.
func FuzzSyntaxChecks(f *testing.F) {
	for _, s := range syntaxInputs() {
		f.Add(s)
	}
	res := make([]*regexp.Regexp, len(replaced))
	for i, c := range replaced {
		res[i] = regexp.MustCompile(c.expr)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i, c := range replaced {
			if want, got := res[i].MatchString(s), c.check(s); got != want {
				t.Errorf("%s(%q) = %v, %s says %v", c.name, s, got, c.expr, want)
			}
		}
	})
}

// TestLazyExpressionsCompileOnce: each expression is compiled on its first
// use and kept.
func TestLazyExpressionsCompileOnce(t *testing.T) {
	for _, get := range []func() *regexp.Regexp{repositoryRE, regionRE, roleARNRE, passRoleRE, placeholder, yamlLineRE, ssmPrefixRE, globClassRE, lambdaFunctionRE} {
		if a, b := get(), get(); a != b {
			t.Errorf("%s compiled twice", a)
		}
	}
}
