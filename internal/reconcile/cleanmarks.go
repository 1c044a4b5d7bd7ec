package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// MarkKey names one family of one place.
type MarkKey struct{ Account, Region, Family string }

func (k MarkKey) pk() string { return "cleanup#" + k.Account + "/" + k.Region + "#" + k.Family }

// Mark is a family's clean mark: the newest ACTIVE revision a cleanup run
// saw when it left nothing to do, and the settings (keep, delete) it ran
// with. While no newer revision runs and the rules ask the same, the
// family is clean and a sweep sends it nothing; lowering keep or adding
// delete: true makes it not clean.
type Mark struct {
	Revision int
	Settings string // MarkSettings
}

// MarkSettings is how a mark records a cleanup's keep and delete.
func MarkSettings(keep int, del bool) string { return fmt.Sprintf("keep=%d,delete=%t", keep, del) }

// CleanMarks remembers, per family and place, the family's Mark.
type CleanMarks interface {
	// Clean returns the mark of each key that has one.
	Clean(ctx context.Context, keys []MarkKey) (map[MarkKey]Mark, error)
	MarkClean(ctx context.Context, k MarkKey, m Mark) error
}

// MarksDB is what the marks need of DynamoDB.
type MarksDB interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// TableMarks keeps the marks in the state table: one small item per family
// and place, pk "cleanup#<account>/<region>#<family>", sk "clean",
// attributes revision (N), settings (S: MarkSettings; a mark without it,
// written before settings were recorded, is of no settings) and at (the
// time it was marked).
type TableMarks struct {
	DB    MarksDB
	Table string
	Now   func() time.Time
}

var _ CleanMarks = (*TableMarks)(nil)

const markSK = "clean"

// maxMarksPerBatch is BatchGetItem's limit of keys per call.
const maxMarksPerBatch = 100

// Clean reads the marks, 100 to a call.
func (m *TableMarks) Clean(ctx context.Context, keys []MarkKey) (map[MarkKey]Mark, error) {
	out := map[MarkKey]Mark{}
	byPK := map[string]MarkKey{}
	for _, k := range keys {
		byPK[k.pk()] = k
	}
	var pks []string
	for pk := range byPK {
		pks = append(pks, pk)
	}
	for start := 0; start < len(pks); start += maxMarksPerBatch {
		var req []map[string]types.AttributeValue
		for _, pk := range pks[start:min(start+maxMarksPerBatch, len(pks))] {
			req = append(req, map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: markSK}})
		}
		pending := map[string]types.KeysAndAttributes{m.Table: {Keys: req, ProjectionExpression: aws.String("pk, revision, settings")}}
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > 0 {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(time.Duration(min(attempt, 6)) * 100 * time.Millisecond):
				}
			}
			res, err := m.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return nil, fmt.Errorf("read clean-up marks: %w", err)
			}
			for _, item := range res.Responses[m.Table] {
				pk, _ := item["pk"].(*types.AttributeValueMemberS)
				rev, _ := item["revision"].(*types.AttributeValueMemberN)
				settings, _ := item["settings"].(*types.AttributeValueMemberS)
				if pk == nil || rev == nil {
					continue
				}
				n, err := strconv.Atoi(rev.Value)
				if err != nil {
					return nil, fmt.Errorf("read clean-up mark %s: revision %q: %w", pk.Value, rev.Value, err)
				}
				mark := Mark{Revision: n}
				if settings != nil {
					mark.Settings = settings.Value
				}
				out[byPK[pk.Value]] = mark
			}
			pending = res.UnprocessedKeys
		}
	}
	return out, nil
}

// MarkClean marks k clean as of mk; a mark of a newer revision stays (a
// late run of an older item lowers nothing). Of two runs as of the same
// revision the later's settings stay: if they are not the rules', the next
// sweep sends the family once more and its run marks it anew.
func (m *TableMarks) MarkClean(ctx context.Context, k MarkKey, mk Mark) error {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	_, err := m.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(m.Table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: k.pk()}, "sk": &types.AttributeValueMemberS{Value: markSK}},
		UpdateExpression:         aws.String("SET revision = :rev, settings = :settings, #at = :at"),
		ConditionExpression:      aws.String("attribute_not_exists(revision) OR revision <= :rev"),
		ExpressionAttributeNames: map[string]string{"#at": "at"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":rev":      &types.AttributeValueMemberN{Value: strconv.Itoa(mk.Revision)},
			":settings": &types.AttributeValueMemberS{Value: mk.Settings},
			":at":       &types.AttributeValueMemberS{Value: now().UTC().Format(time.RFC3339Nano)},
		},
	})
	var newer *types.ConditionalCheckFailedException
	if errors.As(err, &newer) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark %s/%s %s clean as of revision %d (%s): %w", k.Account, k.Region, k.Family, mk.Revision, mk.Settings, err)
	}
	return nil
}
