package approval

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// HashAlgorithm is the hash patjanitor signs with: SHA-512, ssh-keygen's
// default.
const HashAlgorithm = sshsig.HashSHA512

// KeySource finds the signer for `approve --key`.
type KeySource struct {
	// AgentSocket is the ssh-agent's socket (SSH_AUTH_SOCK); empty when
	// there is none.
	AgentSocket string
	// Passphrase is asked for when the private key is encrypted; nil means
	// no one can be asked (no terminal).
	Passphrase func() ([]byte, error)
}

// Signer returns the signer for keyFile: a private key file (OpenSSH or
// PEM), or a public key file whose private half is in the ssh-agent, which is
// how hardware keys and agent-only keys are used. The returned close func
// releases the agent connection.
func (ks KeySource) Signer(keyFile string) (ssh.Signer, func(), error) {
	data, err := readSmallFile(keyFile, false)
	if err != nil {
		return nil, nil, err
	}
	if pub, _, _, _, err := ssh.ParseAuthorizedKey(data); err == nil {
		return ks.agentSigner(keyFile, pub)
	}
	signer, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if ks.Passphrase == nil {
			return nil, nil, fmt.Errorf("%s is encrypted and there is no terminal to ask for its passphrase: add the key to ssh-agent and pass its .pub file", keyFile)
		}
		pass, perr := ks.Passphrase()
		if perr != nil {
			return nil, nil, fmt.Errorf("read the passphrase of %s: %w", keyFile, perr)
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(data, pass)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not an SSH private or public key: %w", keyFile, err)
	}
	return signer, func() {}, nil
}

func (ks KeySource) agentSigner(keyFile string, pub ssh.PublicKey) (ssh.Signer, func(), error) {
	if ks.AgentSocket == "" {
		return nil, nil, fmt.Errorf("%s is a public key: its private half must be in an ssh-agent, and SSH_AUTH_SOCK is not set", keyFile)
	}
	conn, err := net.Dial("unix", ks.AgentSocket)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the ssh-agent: %w", err)
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("list the ssh-agent's keys: %w", err)
	}
	want := pub.Marshal()
	for _, s := range signers {
		if bytes.Equal(s.PublicKey().Marshal(), want) {
			return s, func() { _ = conn.Close() }, nil
		}
	}
	_ = conn.Close()
	return nil, nil, fmt.Errorf("the ssh-agent does not hold the private key of %s (%s)", keyFile, ssh.FingerprintSHA256(pub))
}

// Sign signs a plan file's exact bytes in the patjanitor-plan namespace.
func Sign(planBytes []byte, signer ssh.Signer) (*sshsig.Signature, error) {
	sig, err := sshsig.Sign(bytes.NewReader(planBytes), signer, HashAlgorithm, Namespace)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return sig, nil
}
