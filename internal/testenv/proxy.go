package testenv

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"

	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Proxy stands between clients and moto, on loopback, to give moto two
// behaviours of real AWS it lacks or to break it on purpose:
//
//   - DynamoDB requests are handled one at a time: moto checks a condition
//     and writes without a lock between, so two racing conditional writes
//     can both pass, where DynamoDB applies each atomically.
//   - Lose: for the next n requests of an operation it forwards the request
//     (moto applies it) and then answers 500 instead of moto's response, as
//     when AWS applied a write and the answer was lost on the way: the SDK
//     retries the very same request.
//   - Fail: the next n requests of an operation are refused before moto
//     sees them, with an error the SDK does not retry.
//   - SubSecondPushTimes: ECR's DescribeImages reports imagePushedAt with
//     milliseconds, moto with whole seconds; the proxy adds a fraction, so
//     a comparison that only holds at whole seconds fails here as in AWS.
//   - Faults: a share of all requests fails at random, in the ways AWS
//     fails: throttled, a server error, a dropped connection, or a
//     connection dropped after moto applied the request.
//
// It counts the requests of each operation, so a test can hold a code path
// to the AWS calls it promises, and it can add the latency of a network
// (Latency) for benchmarks.
type Proxy struct {
	URL      string
	dynamo   sync.Mutex
	mu       sync.Mutex
	lose     map[string]int
	fail     map[string]int
	lost     map[string]int
	calls    map[string]int
	latency  time.Duration
	parallel bool
	// pushFraction is added to every imagePushedAt moto reports.
	pushFraction time.Duration
	// faults
	faultRate float64
	rng       *rand.Rand
	injected  map[string]int
	// throttleFamily answers that many RegisterTaskDefinition calls of a
	// family with ECS's throttling; registrations counts the others.
	throttleFamily map[string]int
	registrations  map[string]int
	// after runs once moto applied a call, before its answer goes back.
	after func(op string, body []byte)
}

// Kinds of injected fault, as Injected counts them.
const (
	FaultThrottle  = "throttled"           // 400 ThrottlingException, before moto sees it
	FaultServer    = "5xx"                 // 500 InternalFailure, before moto sees it
	FaultDrop      = "dropped"             // connection closed, before moto sees it
	FaultDropAfter = "dropped-after-apply" // moto applied it; the answer never came
)

// StartProxy proxies to endpoint until the test ends.
func StartProxy(t testing.TB, endpoint string) *Proxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{lose: map[string]int{}, fail: map[string]int{}, lost: map[string]int{}, calls: map[string]int{},
		throttleFamily: map[string]int{}, registrations: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		op := operation(resp.Request.Header.Get("X-Amz-Target"))
		if op == "DescribeImages" {
			if err := p.pushTimesAtECRPrecision(resp); err != nil {
				return err
			}
		}
		if !p.take(p.lose, op) {
			return nil
		}
		p.add(p.lost, op, 1)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		body := []byte(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"the response was lost (test proxy)"}`)
		resp.StatusCode, resp.Status = http.StatusInternalServerError, "500 Internal Server Error"
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		resp.Header.Set("Content-Type", "application/x-amz-json-1.0")
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		op := operation(target)
		p.count(op)
		if kind := p.fault(); kind != "" {
			p.inject(w, r, rp, kind, target)
			return
		}
		if p.take(p.fail, op) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException","message":"injected failure (test proxy)"}`)
			return
		}
		if op == "RegisterTaskDefinition" && p.registration(r) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"ThrottlingException","message":"Rate exceeded (test proxy)"}`)
			return
		}
		latency, parallel := p.settings()
		if latency > 0 {
			time.Sleep(latency)
		}
		if strings.HasPrefix(target, "DynamoDB_") && !parallel {
			p.dynamo.Lock()
			defer p.dynamo.Unlock()
		}
		p.mu.Lock()
		after := p.after
		p.mu.Unlock()
		if after == nil {
			rp.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		after(op, body)
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Faults makes a share rate of all requests fail at random (seeded, so a
// failing run can be replayed): throttled, a server error, a dropped
// connection, or a connection dropped after the service applied the request.
func (p *Proxy) Faults(rate float64, seed uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faultRate, p.rng, p.injected = rate, rand.New(rand.NewPCG(seed, seed)), map[string]int{}
}

// Injected counts the faults injected so far, by kind.
func (p *Proxy) Injected() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.injected)
}

func (p *Proxy) fault() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rng == nil || p.rng.Float64() >= p.faultRate {
		return ""
	}
	kind := []string{FaultThrottle, FaultServer, FaultDrop, FaultDropAfter}[p.rng.IntN(4)]
	p.injected[kind]++
	return kind
}

func (p *Proxy) inject(w http.ResponseWriter, r *http.Request, rp http.Handler, kind, target string) {
	errorType := func(name string) string {
		if strings.HasPrefix(target, "DynamoDB_") {
			return "com.amazonaws.dynamodb.v20120810#" + name
		}
		return name
	}
	switch kind {
	case FaultThrottle:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"`+errorType("ThrottlingException")+`","message":"Rate exceeded (test proxy)"}`)
	case FaultServer:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"__type":"`+errorType("InternalFailure")+`","message":"injected (test proxy)"}`)
	case FaultDropAfter:
		if strings.HasPrefix(target, "DynamoDB_") && !p.isParallel() {
			p.dynamo.Lock()
			defer p.dynamo.Unlock()
		}
		rp.ServeHTTP(httptest.NewRecorder(), r)
		fallthrough
	case FaultDrop:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}
}

func (p *Proxy) isParallel() bool {
	_, parallel := p.settings()
	return parallel
}

// Latency delays every request by d before it reaches moto, as the way to
// AWS and back would.
func (p *Proxy) Latency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

// Parallel lets DynamoDB requests reach moto at once, for benchmarks whose
// writes never race on one item (moto would not apply such races atomically).
func (p *Proxy) Parallel() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parallel = true
}

func (p *Proxy) settings() (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latency, p.parallel
}

// ThrottleRegistrations answers the next n RegisterTaskDefinition calls of
// family with ECS's ThrottlingException (0 stops it), before moto sees them.
func (p *Proxy) ThrottleRegistrations(family string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.throttleFamily[family] = n
}

// Registrations counts the RegisterTaskDefinition calls that reached moto,
// by family.
func (p *Proxy) Registrations() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.registrations)
}

// After runs hook once moto applied each call, before its answer goes back
// (nil: none): a test's way to act between a write and its answer, as a
// crash would.
func (p *Proxy) After(hook func(op string, body []byte)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.after = hook
}

// registration notes a RegisterTaskDefinition call of r's family, and says
// whether it is to be throttled instead.
func (p *Proxy) registration(r *http.Request) (throttled bool) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in struct{ Family string }
	_ = json.Unmarshal(body, &in)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.throttleFamily[in.Family] > 0 {
		p.throttleFamily[in.Family]--
		return true
	}
	p.registrations[in.Family]++
	return false
}

// Lose makes the answers to the next n requests of op (e.g. "UpdateItem") lost.
func (p *Proxy) Lose(op string, n int) { p.add(p.lose, op, n) }

// Fail makes the next n requests of op fail without reaching moto.
func (p *Proxy) Fail(op string, n int) { p.add(p.fail, op, n) }

// Lost says how many answers to op were lost so far.
func (p *Proxy) Lost(op string) int { return p.get(p.lost, op) }

// Calls returns the requests made so far, by operation, and starts counting anew.
func (p *Proxy) Calls() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	calls := p.calls
	p.calls = map[string]int{}
	return calls
}

// count notes a request; Calls swaps the map, so it is read under the lock.
func (p *Proxy) count(op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[op]++
}

func (p *Proxy) add(m map[string]int, op string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m[op] += n
}

func (p *Proxy) get(m map[string]int, op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return m[op]
}

// take uses up one of the pending n of op, if any is left.
func (p *Proxy) take(pending map[string]int, op string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pending[op] == 0 {
		return false
	}
	pending[op]--
	return true
}

// operation is the operation named by an X-Amz-Target header.
func operation(target string) string {
	if i := strings.LastIndex(target, "."); i >= 0 {
		return target[i+1:]
	}
	return target
}

// Config is cfg aimed at the proxy.
func (p *Proxy) Config(cfg aws.Config) aws.Config {
	cfg.BaseEndpoint = aws.String(p.URL)
	return cfg
}

// SubSecondPushTimes adds fraction (under a second) to every imagePushedAt
// of DescribeImages answers, as real ECR's milliseconds would read.
func (p *Proxy) SubSecondPushTimes(fraction time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pushFraction = fraction
}

// pushTimesAtECRPrecision rewrites a DescribeImages answer's push times
// (epoch seconds as JSON numbers) with the fraction set, if any.
func (p *Proxy) pushTimesAtECRPrecision(resp *http.Response) error {
	p.mu.Lock()
	fraction := p.pushFraction
	p.mu.Unlock()
	if fraction == 0 || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err == nil {
		details, _ := out["imageDetails"].([]any)
		for _, d := range details {
			if m, ok := d.(map[string]any); ok {
				if at, ok := m["imagePushedAt"].(float64); ok {
					m["imagePushedAt"] = math.Floor(at) + fraction.Seconds()
				}
			}
		}
		if rewritten, err := json.Marshal(out); err == nil {
			body = rewritten
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}
