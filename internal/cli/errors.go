package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
)

// The CLI is read mid-incident: an error it prints says what failed, for
// which service, and what to do, in the operator's words. explain turns
// the SDK's errors ("operation error ECS: DescribeServices, https response
// error StatusCode: 400, RequestID: …, ServiceNotFoundException: …") into
// such a sentence, keeping the context the command wrapped them in.

// scope is what a command works on, as far as known, for explain to name:
// the service its flags name (filled by serviceFlags.resolve) and the
// account and region. Run puts one in the context of each command, so
// nothing is shared between runs.
type scope struct {
	cluster, service, account, region string
}

type scopeKey struct{}

func withScope(ctx context.Context) (context.Context, *scope) {
	s := &scope{}
	return context.WithValue(ctx, scopeKey{}, s), s
}

// setScope records what the command works on, for its errors.
func setScope(ctx context.Context, cluster, service, account, region string) {
	if s, ok := ctx.Value(scopeKey{}).(*scope); ok {
		*s = scope{cluster: cluster, service: service, account: account, region: region}
	}
}

// where is "(123456789012 eu-west-1)", or "" when neither is known.
func (s scope) where() string {
	if w := strings.TrimSpace(s.account + " " + s.region); w != "" {
		return " (" + w + ")"
	}
	return ""
}

// explain is err as the operator reads it. An error with no AWS call in
// it (ours, already in the operator's words) is left as it is.
func explain(err error, s scope) string {
	var op *smithy.OperationError
	if !errors.As(err, &op) {
		return err.Error()
	}
	said := explainCall(op, s)
	// The command's own words around the call ("describe service prod/web:
	// …") stay; the SDK's are replaced.
	if full, raw := err.Error(), op.Error(); strings.Contains(full, raw) {
		return strings.Replace(full, raw, said, 1)
	}
	return said
}

// The message AWS sends with AccessDenied names the caller, the action
// and the resource; not every service sends all three.
var (
	deniedIdentity = regexp.MustCompile(`(?:User|Principal): (arn:\S+)`)
	deniedAction   = regexp.MustCompile(`perform: (\S+)`)
	deniedResource = regexp.MustCompile(`on resource: (\S+)`)
)

// explainCall says what went wrong with one AWS call.
func explainCall(op *smithy.OperationError, s scope) string {
	call := op.ServiceID + " " + op.OperationName
	var api smithy.APIError
	var signing *v4.SigningError
	var dns *net.DNSError
	var netOp *net.OpError
	var urlErr *url.Error
	// The SDK says it found no credentials only in words: "get identity: get
	// credentials: …" (older versions: a SigningError).
	noIdentity := strings.HasPrefix(op.Err.Error(), "get identity: ") || errors.As(op, &signing)
	switch {
	case noIdentity && strings.Contains(op.Err.Error(), "expired"):
		return "your AWS credentials have expired (" + call + " not sent): log in again (aws sso login, or refresh AWS_PROFILE's credentials)"
	case noIdentity:
		return "no AWS credentials found (" + call + " not sent): set AWS_PROFILE (and aws sso login) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	case errors.As(op, &api):
		return explainAPI(api, op, call, s)
	case errors.As(op, &dns):
		return fmt.Sprintf("cannot reach %s: no such host %s (check --region, AWS_REGION and AWS_ENDPOINT_URL)", op.ServiceID, dns.Name)
	case errors.As(op, &urlErr) && errors.As(op, &netOp):
		return fmt.Sprintf("cannot reach %s at %s (%s): check the network, AWS_REGION and AWS_ENDPOINT_URL", op.ServiceID, endpointOf(urlErr.URL), netOp.Err)
	case errors.As(op, &netOp):
		return fmt.Sprintf("cannot reach %s (%s): check the network, AWS_REGION and AWS_ENDPOINT_URL", op.ServiceID, netOp.Err)
	case errors.Is(op, context.Canceled):
		return call + " interrupted"
	case errors.Is(op, context.DeadlineExceeded):
		return call + " timed out"
	}
	return call + " failed: " + innermost(op)
}

func explainAPI(api smithy.APIError, op *smithy.OperationError, call string, s scope) string {
	code, msg := api.ErrorCode(), api.ErrorMessage()
	switch {
	case code == "ServiceNotFoundException" && s.service != "":
		return fmt.Sprintf("%s/%s: no such service in cluster %s%s", s.cluster, s.service, s.cluster, s.where())
	case code == "ServiceNotFoundException":
		return "no such service (" + call + ")"
	case code == "ClusterNotFoundException" && s.cluster != "":
		return fmt.Sprintf("no cluster %s%s: check --cluster (and --account, --region)", s.cluster, s.where())
	case code == "ClusterNotFoundException":
		return "no such cluster (" + call + ")"
	case code == "ResourceNotFoundException" && op.ServiceID == "DynamoDB":
		return "the state table does not exist" + s.where() + ": check --table (or AUTODEPLOY_TABLE) and the region"
	case code == "ExpiredToken" || code == "ExpiredTokenException" || code == "RequestExpired":
		return "your AWS credentials have expired (" + call + "): log in again (aws sso login, or refresh AWS_PROFILE's credentials)"
	case code == "InvalidClientTokenId" || code == "UnrecognizedClientException":
		return "AWS does not know your credentials (" + call + "): check AWS_PROFILE or AWS_ACCESS_KEY_ID"
	case isDenied(code):
		action := strings.ToLower(strings.ReplaceAll(op.ServiceID, " ", "")) + ":" + op.OperationName
		if m := deniedAction.FindStringSubmatch(msg); m != nil {
			action = m[1]
		}
		resource := "its resource"
		if m := deniedResource.FindStringSubmatch(msg); m != nil {
			resource = m[1]
		} else if s.service != "" {
			resource = "service " + s.cluster + "/" + s.service + s.where()
		}
		identity := "run aws sts get-caller-identity"
		if m := deniedIdentity.FindStringSubmatch(msg); m != nil {
			identity = m[1]
		}
		return fmt.Sprintf("not allowed: %s on %s (your identity %s); see README 'IAM for operators'", action, resource, identity)
	case isThrottle(code):
		return "AWS throttled " + call + " (too many calls, retried): wait a minute and run it again"
	}
	if msg == "" {
		return call + " failed: " + code
	}
	return call + " failed: " + code + ": " + msg
}

// isDenied reports an AWS service's refusal for want of permission, as its
// error codes spell it (AccessDenied…, UnauthorizedOperation, SNS's
// AuthorizationError…).
func isDenied(code string) bool {
	switch code {
	case "UnauthorizedOperation", "AuthorizationError", "AuthorizationErrorException":
		return true
	}
	return strings.HasPrefix(code, "AccessDenied")
}

func isThrottle(code string) bool {
	_, ok := retry.DefaultThrottleErrorCodes[code]
	return ok
}

// endpointOf is the scheme and host of a request's URL, without its path.
func endpointOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

// innermost is the deepest error's text: the cause, without the SDK's
// layers of operation, status and request id.
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
