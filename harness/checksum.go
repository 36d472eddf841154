package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

// ErrCorrupt means a checkpoint or exported model does not match the
// content checksum it was written with.
var ErrCorrupt = errors.New("harness: file is corrupt")

// keyChecksum is the metadata entry of checkpoints and exported models that
// holds the SHA-256 of the model serialised (deterministically) without it.
const keyChecksum = "critlab.sha256"

// seal appends the content checksum to m's metadata and serialises it.
func seal(m *pb.ModelProto) ([]byte, error) {
	takeChecksum(m)
	data, err := graph.Marshal(m)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	m.MetadataProps = append(m.MetadataProps, &pb.StringStringEntryProto{Key: proto.String(keyChecksum), Value: proto.String(hex.EncodeToString(sum[:]))})
	return graph.Marshal(m)
}

// verify checks m, read from path, against its content checksum and
// removes the checksum from its metadata. Files written before checksums
// (or by other tools) have none and pass.
func verify(path string, m *pb.ModelProto) error {
	want, ok := takeChecksum(m)
	if !ok {
		return nil
	}
	data, err := graph.Marshal(m)
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != want {
		return fmt.Errorf("%w: %s: its content does not match the checksum it was written with", ErrCorrupt, path)
	}
	return nil
}

// loadVerified loads a model or checkpoint and verifies its checksum; a
// file that does not even parse is corrupt too.
func loadVerified(path string) (*pb.ModelProto, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	m, err := graph.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	if err := verify(path, m); err != nil {
		return nil, err
	}
	return m, nil
}

// VerifyFile checks a checkpoint or exported model against its content
// checksum; the error wraps ErrCorrupt when it does not match.
func VerifyFile(path string) error {
	_, err := loadVerified(path)
	return err
}

func takeChecksum(m *pb.ModelProto) (string, bool) {
	for i, p := range m.MetadataProps {
		if p.GetKey() == keyChecksum {
			m.MetadataProps = append(m.MetadataProps[:i], m.MetadataProps[i+1:]...)
			return p.GetValue(), true
		}
	}
	return "", false
}
