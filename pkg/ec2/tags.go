package ec2

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/klog/v2"
)

// MaxTagResources is AWS's limit on resource IDs in one CreateTags or
// DeleteTags call ("Constraints: Up to 1000 resource IDs").
const MaxTagResources = 1000

// TagError is the error a tag or untag of one resource ends with when EC2
// named that resource as unknown or malformed; the other resources of the
// same call were tagged. Code is the AWS error code.
type TagError struct {
	ID, Code string
}

func (e *TagError) Error() string { return fmt.Sprintf("tag %s: %s", e.ID, e.Code) }

// Unwrap lets errors.Is(err, ErrInstanceNotFound) match unknown instances.
func (e *TagError) Unwrap() error {
	if e.Code == codeInstanceNotFound {
		return ErrInstanceNotFound
	}
	return nil
}

// CreateTags sets tags on resources (at most MaxTagResources per call;
// longer lists are split). Each call takes a token from the client's
// CreateTags bucket, apart from the assignments' (AWS's buckets are apart too).
// EC2 fails a whole call when one ID is unknown or malformed: those IDs are
// dropped, reported in bad (ID → AWS code) and the rest sent again.
func (c *Client) CreateTags(ctx context.Context, ids []string, tags map[string]string) (bad map[string]string, err error) {
	return c.changeTags(ctx, ids, tags, true)
}

// DeleteTags removes tags from resources, each only where the resource's
// value equals the one given (AWS's rule for a key sent with a value), so a
// tag someone else changed since is left alone. It splits, rate-limits and
// drops bad IDs as CreateTags does.
func (c *Client) DeleteTags(ctx context.Context, ids []string, tags map[string]string) (bad map[string]string, err error) {
	return c.changeTags(ctx, ids, tags, false)
}

func (c *Client) changeTags(ctx context.Context, ids []string, tags map[string]string, create bool) (map[string]string, error) {
	bad := map[string]string{}
	if len(tags) == 0 {
		return bad, fmt.Errorf("change tags: no tags given")
	}
	sdkTags := make([]ec2types.Tag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		sdkTags = append(sdkTags, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	var work [][]string
	for chunk := range slices.Chunk(slices.Clone(ids), MaxTagResources) {
		work = append(work, chunk)
	}
	op := "create tags"
	if !create {
		op = "delete tags"
	}
	for len(work) > 0 {
		set := work[len(work)-1]
		work = work[:len(work)-1]
		bucket := "CreateTags"
		if !create {
			bucket = "DeleteTags"
		}
		if err := c.waitN(ctx, c.tagRL[create], bucket, 1); err != nil {
			return bad, err
		}
		callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		var err error
		if create {
			_, err = c.api.CreateTags(callCtx, &ec2.CreateTagsInput{Resources: set, Tags: sdkTags})
		} else {
			_, err = c.api.DeleteTags(callCtx, &ec2.DeleteTagsInput{Resources: set, Tags: sdkTags})
		}
		cancel()
		if err == nil {
			continue
		}
		code := ErrorCode(err)
		if code != codeInstanceNotFound && code != codeInstanceMalformed {
			return bad, fmt.Errorf("%s on %d resources: %w", op, len(set), err)
		}
		named := namedIDs(err, set)
		switch {
		case len(named) > 0:
			for _, id := range named {
				bad[id] = code
			}
			if rest := slices.DeleteFunc(slices.Clone(set), func(id string) bool { return bad[id] != "" }); len(rest) > 0 {
				work = append(work, rest)
			}
		case len(set) == 1:
			bad[set[0]] = code
		default:
			half := len(set) / 2
			work = append(work, set[:half], set[half:])
		}
		klog.V(4).InfoS("Dropping unknown resource IDs from tag call", "code", code, "named", len(named), "batch", len(set))
	}
	return bad, nil
}

// TagBatcher collects resource IDs for a window and tags (or untags) them
// with one CreateTags (or DeleteTags) call per MaxTagResources IDs. Add never
// blocks: done is called once the ID's call has finished, with nil, a
// *TagError for an ID EC2 refused, or the call's error. One flush runs at a
// time; IDs added meanwhile form the next batch.
type TagBatcher struct {
	ctx    context.Context
	c      *Client
	tags   map[string]string
	create bool
	b      *batcher[string, func(error)]
}

// NewTagBatcher returns a batcher that sets (create) or removes tags. ctx
// bounds every call it makes.
func (c *Client) NewTagBatcher(ctx context.Context, tags map[string]string, create bool, window time.Duration) *TagBatcher {
	t := &TagBatcher{ctx: ctx, c: c, tags: maps.Clone(tags), create: create}
	t.b = newBatcher(window, t.flush, nil)
	return t
}

// Add queues id; done receives its outcome.
func (t *TagBatcher) Add(id string, done func(error)) { t.b.add(id, done) }

// flush tags (or untags) a batch's IDs and reports each one's outcome.
func (t *TagBatcher) flush(batch map[string][]func(error)) {
	ids := slices.Sorted(maps.Keys(batch))
	bad, err := t.c.changeTags(t.ctx, ids, t.tags, t.create)
	for _, id := range ids {
		var e error
		switch {
		case bad[id] != "":
			e = &TagError{ID: id, Code: bad[id]}
		case err != nil:
			e = err
		}
		for _, done := range batch[id] {
			done(e)
		}
	}
}
