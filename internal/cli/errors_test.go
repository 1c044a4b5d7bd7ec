package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// The errors are made by the SDK itself, from the answers AWS gives (a
// local server speaks ECS's and DynamoDB's JSON protocol: moto answers
// none of AccessDenied, throttling or expired tokens), so explain is
// tested on the errors, and the wrapping, the operator would see.
func TestExplain(t *testing.T) {
	t.Parallel()
	prod := scope{cluster: "prod", service: "web", account: "123456789012", region: "eu-west-1"}
	denied := `User: arn:aws:sts::123456789012:assumed-role/oncall/alice is not authorized to perform: ecs:UpdateService on resource: arn:aws:ecs:eu-west-1:123456789012:service/prod/web because no identity-based policy allows the ecs:UpdateService action`
	for _, tc := range []struct {
		name       string
		status     int
		errType    string
		message    string
		dynamo     bool   // call DynamoDB instead of ECS
		creds      string // "none": no credentials; "expired": the provider says so
		unreachble bool
		scope      scope
		want       string
	}{
		{name: "no such service", status: 400, errType: "ServiceNotFoundException", message: "Service not found.", scope: prod,
			want: "update prod/web: prod/web: no such service in cluster prod (123456789012 eu-west-1)"},
		{name: "no such service, no scope", status: 400, errType: "ServiceNotFoundException", message: "Service not found.",
			want: "update prod/web: no such service (ECS UpdateService)"},
		{name: "no cluster", status: 400, errType: "ClusterNotFoundException", message: "Cluster not found.", scope: prod,
			want: "update prod/web: no cluster prod (123456789012 eu-west-1): check --cluster (and --account, --region)"},
		{name: "access denied", status: 400, errType: "AccessDeniedException", message: denied, scope: prod,
			want: "update prod/web: not allowed: ecs:UpdateService on arn:aws:ecs:eu-west-1:123456789012:service/prod/web (your identity arn:aws:sts::123456789012:assumed-role/oncall/alice); see README 'IAM for operators'"},
		{name: "access denied, terse", status: 400, errType: "AccessDeniedException", message: "Access denied", scope: prod,
			want: "update prod/web: not allowed: ecs:UpdateService on service prod/web (123456789012 eu-west-1) (your identity run aws sts get-caller-identity); see README 'IAM for operators'"},
		{name: "throttled", status: 400, errType: "ThrottlingException", message: "Rate exceeded", scope: prod,
			want: "update prod/web: AWS throttled ECS UpdateService (too many calls, retried): wait a minute and run it again"},
		{name: "expired token", status: 400, errType: "ExpiredTokenException", message: "The security token included in the request is expired",
			want: "update prod/web: your AWS credentials have expired (ECS UpdateService): log in again (aws sso login, or refresh AWS_PROFILE's credentials)"},
		{name: "unknown error", status: 400, errType: "InvalidParameterException", message: "Task definition does not exist.",
			want: "update prod/web: ECS UpdateService failed: InvalidParameterException: Task definition does not exist."},
		{name: "no table", status: 400, errType: "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", message: "Requested resource not found", dynamo: true, scope: prod,
			want: "update prod/web: the state table does not exist (123456789012 eu-west-1): check --table (or AUTODEPLOY_TABLE) and the region"},
		{name: "no credentials", creds: "none",
			want: "update prod/web: no AWS credentials found (ECS UpdateService not sent): set AWS_PROFILE (and aws sso login) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{name: "expired credentials", creds: "expired",
			want: "update prod/web: your AWS credentials have expired (ECS UpdateService not sent): log in again (aws sso login, or refresh AWS_PROFILE's credentials)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `{"__type":%q,"message":%q}`, tc.errType, tc.message)
			}))
			t.Cleanup(srv.Close)
			cfg := aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
			switch tc.creds {
			case "none":
				cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{}, errors.New("no EC2 IMDS role found")
				})
			case "expired":
				cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{}, errors.New("the SSO session has expired or is invalid")
				})
			}
			err := call(cfg, tc.dynamo)
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tc.want, explain(fmt.Errorf("update prod/web: %w", err), tc.scope)); diff != "" {
				t.Errorf("explain(%v) (-want +got):\n%s", err, diff)
			}
		})
	}
}

func call(cfg aws.Config, dynamo bool) error {
	if dynamo {
		_, err := dynamodb.NewFromConfig(cfg).DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String("autodeploy")})
		return err
	}
	_, err := ecs.NewFromConfig(cfg).UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web")})
	return err
}

// An endpoint no one listens on: the operator reads which service could
// not be reached, and where.
func TestExplainUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String("http://" + addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	got := explain(call(cfg, false), scope{})
	want := "cannot reach ECS at http://" + addr + " (connect: connection refused): check the network, AWS_REGION and AWS_ENDPOINT_URL"
	if got != want {
		t.Errorf("explain = %q, want %q", got, want)
	}
	// Ours, with no AWS call in it, is left as it is.
	if got := explain(errors.New("no rule \"x\" in autodeploy.yaml"), scope{}); got != `no rule "x" in autodeploy.yaml` {
		t.Errorf("explain of our own error = %q", got)
	}
}

// Through Run, against moto: a table that does not exist, and no region
// at all (refused before any call, exit 2).
func TestRunExplainsErrors(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	r := cli(t, m, "no-such-table", "history", "--cluster", "prod", "--service", "web")
	if want := "autodeploy history: query history of " + testenv.Account + "/" + testenv.Region + "/prod/web: the state table does not exist (" + testenv.Account + " " + testenv.Region + "): check --table (or AUTODEPLOY_TABLE) and the region\n"; r.code != 1 || r.stderr != want {
		t.Errorf("history of a missing table = %+v, want stderr %q", r, want)
	}
	cfg := m.AWSConfig()
	cfg.Region = ""
	table := m.CreateTable(t, "autodeploy")
	noRegion := func(args ...string) run { return cliWith(t, cfg, table, args...) }
	for _, args := range [][]string{
		{"history", "--cluster", "prod", "--service", "web"},
		{"hold", "--cluster", "prod", "--service", "web", "--reason", "x"},
		{"status", "--config", writeRules(t)},
		{"plan", "--rule", "web-prod", "--tag", "v1.4.0", "--config", writeRules(t)},
	} {
		r := noRegion(args...)
		if want := "autodeploy " + args[0] + ": no AWS region: set AWS_REGION or pass --region\n"; r.code != 2 || r.stderr != want || r.stdout != "" {
			t.Errorf("%v without a region = %+v, want exit 2 and %q", args, r, want)
		}
	}
	// --region fills it.
	if r := noRegion("history", "--cluster", "prod", "--service", "web", "--region", testenv.Region); r.code != 0 {
		t.Errorf("history --region without AWS_REGION: %+v", r)
	}
}
