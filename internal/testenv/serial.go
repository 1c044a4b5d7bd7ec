package testenv

import (
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// SerialDynamoDB is a DynamoDB client on cfg that sends one request at a
// time. moto's server applies concurrent writes without isolation (two
// transactions at once can lose an increment, or undo each other's writes),
// where DynamoDB serialises the writes to one item; tests of racing callers
// still interleave between their calls, which is the race they test.
// Proxy does the same for requests through it (unless Parallel).
func SerialDynamoDB(cfg aws.Config) *dynamodb.Client {
	base := cfg.HTTPClient
	if base == nil {
		base = http.DefaultClient
	}
	cfg.HTTPClient = &serialClient{base: base}
	return dynamodb.NewFromConfig(cfg)
}

// serialClient sends DynamoDB requests one at a time.
type serialClient struct {
	mu   sync.Mutex
	base aws.HTTPClient
}

func (c *serialClient) Do(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_") {
		c.mu.Lock()
		defer c.mu.Unlock()
	}
	return c.base.Do(r)
}
