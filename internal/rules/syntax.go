package rules

import (
	"regexp"
	"sync"
)

// The loader's syntax checks. None of them costs anything at package init:
// a name that is a run of allowed characters of bounded length is checked
// byte by byte, and the few that need a regular expression compile it on
// first use. RE2 expands a counted repetition such as {1,512} into that
// many copies of its class, so the expressions that had one (role ARNs,
// 512 characters of name) now match an unbounded run and bound its length
// in code: compiling the role ARN's alone took ~0.55 ms, the package's
// initialiser 2.4–3.5 ms of every cold start. syntax_test.go holds each
// check to the expression it replaced.

// lazyRegexp is a regular expression compiled the first time it is used.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

var (
	repositoryRE = lazyRegexp(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	regionRE     = lazyRegexp(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	// roleARNRE's groups: the account, the role's path and name (≤ 512).
	roleARNRE   = lazyRegexp(`^arn:aws[a-z-]*:iam::([0-9]{12}):role/([\w+=,.@/-]+)$`)
	passRoleRE  = lazyRegexp(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/([\w+=,.@/*-]+)$`)
	placeholder = lazyRegexp(`\{[^}]*\}`)
	yamlLineRE  = lazyRegexp(`^yaml: (?:line ([0-9]+): )?`)
	// ssmPrefixRE is a parameter path: /-separated segments of the
	// characters Parameter Store allows in names.
	ssmPrefixRE = lazyRegexp(`^(/[A-Za-z0-9_.-]+)+$`)
	globClassRE = lazyRegexp(`\[[^\]]*\]`)
	// A hook is a Lambda function name (≤ 64), partial or full ARN, with
	// an optional version or alias (≤ 128).
	lambdaFunctionRE = lazyRegexp(`^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:)?([A-Za-z0-9_-]+)(:[A-Za-z0-9$_-]+)?$`)
	// gateDurationRE is a gate's duration: days, hours, minutes, seconds.
	gateDurationRE = lazyRegexp(`^(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$`)
)

// maxRoleName bounds an IAM role's path and name together, as the ARN
// patterns count them.
const maxRoleName = 512

// roleARNAccount is the account of an IAM role ARN, and whether s is one.
func roleARNAccount(s string) (string, bool) {
	m := roleARNRE().FindStringSubmatch(s)
	if m == nil || len(m[2]) > maxRoleName {
		return "", false
	}
	return m[1], true
}

// isPassRole reports an IAM role ARN pattern ('*' allowed in the path and name).
func isPassRole(s string) bool {
	m := passRoleRE().FindStringSubmatch(s)
	return m != nil && len(m[1]) <= maxRoleName
}

// isLambdaFunction reports a Lambda function name, partial or full ARN, with
// an optional version or alias.
func isLambdaFunction(s string) bool {
	m := lambdaFunctionRE().FindStringSubmatch(s)
	return m != nil && len(m[2]) <= 64 && len(m[3]) <= 1+128
}

// run reports whether s has from min to max bytes, each one allowed.
func run(s string, min, max int, allowed func(c byte) bool) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := range len(s) {
		if !allowed(s[i]) {
			return false
		}
	}
	return true
}

func isLowerOrDigit(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
func isDigit(c byte) bool        { return '0' <= c && c <= '9' }
func isWord(c byte) bool         { return isLowerOrDigit(c) || 'A' <= c && c <= 'Z' || c == '_' }

// isRuleName: ^[a-z0-9-]{1,64}$.
func isRuleName(s string) bool {
	return run(s, 1, 64, func(c byte) bool { return isLowerOrDigit(c) || c == '-' })
}

// isECSName (a cluster's or service's): ^[A-Za-z0-9_-]{1,255}$.
func isECSName(s string) bool {
	return run(s, 1, 255, func(c byte) bool { return isWord(c) || c == '-' })
}

// isAccount: ^[0-9]{12}$.
func isAccount(s string) bool { return run(s, 12, 12, isDigit) }

// isDockerTag: ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$.
func isDockerTag(s string) bool {
	return len(s) > 0 && isWord(s[0]) && run(s[1:], 0, MaxTagLength-1, func(c byte) bool { return isWord(c) || c == '.' || c == '-' })
}

// isCodeDeployName: ^[A-Za-z0-9._+-]{1,100}$.
func isCodeDeployName(s string) bool {
	return run(s, 1, 100, func(c byte) bool { return isWord(c) || c == '.' || c == '+' || c == '-' })
}
