using System.Security.Cryptography;
using System.Text;

namespace Midge.Security;

public enum ScramOutcome
{
    /// <summary>Send <see cref="ScramStep.Data"/> in AUTH 0x18 and wait for the client's next message.</summary>
    Continue,
    /// <summary>Authenticated: send <see cref="ScramStep.Data"/> (server-final-message) with the success.</summary>
    Success,
    /// <summary>Refused; <see cref="ScramStep.Error"/> says why (for the log, never for the client).</summary>
    Failure,
}

public readonly record struct ScramStep(ScramOutcome Outcome, byte[]? Data = null, string? Error = null)
{
    public static ScramStep Fail(string error) => new(ScramOutcome.Failure, null, error);
}

/// <summary>
/// The server side of one SCRAM exchange (RFC 5802, RFC 7677) as MQTT 5 enhanced authentication carries it:
/// CONNECT (or AUTH 0x19) brings client-first-message, AUTH 0x18 answers server-first-message, AUTH 0x18 brings
/// client-final-message, and CONNACK (or AUTH 0x00) carries server-final-message. The credentials are password
/// file entries: <c>$7$</c> (PBKDF2-HMAC-SHA512, as mosquitto_passwd writes them) is SCRAM-SHA-512's
/// SaltedPassword, and Midge's <c>$8$</c> (PBKDF2-HMAC-SHA256) is SCRAM-SHA-256's. Channel binding is not
/// offered. An unknown user runs a full exchange against made-up credentials, so it fails exactly like a
/// wrong password.
/// </summary>
public sealed class ScramServerExchange
{
    public const string Sha256 = "SCRAM-SHA-256";
    public const string Sha512 = "SCRAM-SHA-512";

    private readonly HashAlgorithmName _hash;
    private readonly PasswordHashKind _kind;
    private readonly Func<string, PasswordHash?> _lookup;
    private int _state; // 0 = awaiting client-first, 1 = awaiting client-final, 2 = done
    private string? _clientFirstBare;
    private string? _serverFirst;
    private string? _nonce;
    private string? _gs2Header;
    private byte[]? _saltedPassword;
    private bool _knownUser;
    private string? _pendingUser;

    /// <summary>Starts an exchange for <paramref name="mechanism"/>, looking users up with <paramref name="lookup"/>.</summary>
    public ScramServerExchange(string mechanism, Func<string, PasswordHash?> lookup)
    {
        (_hash, _kind) = mechanism switch
        {
            Sha256 => (HashAlgorithmName.SHA256, PasswordHashKind.Sha256Pbkdf2),
            Sha512 => (HashAlgorithmName.SHA512, PasswordHashKind.Sha512Pbkdf2),
            _ => throw new ArgumentException($"unsupported mechanism '{mechanism}'", nameof(mechanism)),
        };
        Mechanism = mechanism;
        _lookup = lookup;
    }

    public static bool IsSupported(string? mechanism) => mechanism is Sha256 or Sha512;

    public string Mechanism { get; }

    /// <summary>The user name the client authenticated as (set once the exchange succeeds).</summary>
    public string? UserName { get; private set; }

    /// <summary>Takes the client's next message and says what to answer.</summary>
    public ScramStep Step(ReadOnlySpan<byte> clientData)
    {
        string message;
        try
        {
            message = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(clientData);
        }
        catch (DecoderFallbackException)
        {
            _state = 2;
            return ScramStep.Fail("SCRAM message is not UTF-8");
        }
        var step = _state switch
        {
            0 => ClientFirst(message),
            1 => ClientFinal(message),
            _ => ScramStep.Fail("SCRAM exchange already finished"),
        };
        _state = step.Outcome == ScramOutcome.Continue ? _state + 1 : 2;
        return step;
    }

    private ScramStep ClientFirst(string message)
    {
        // gs2-header: "n,," (client does not support channel binding) or "y,," (thinks we don't); no authzid.
        if (!(message.StartsWith("n,,", StringComparison.Ordinal) || message.StartsWith("y,,", StringComparison.Ordinal)))
        {
            return ScramStep.Fail("SCRAM client-first-message: channel binding and authzid are not supported");
        }
        _gs2Header = message[..3];
        _clientFirstBare = message[3..];
        string? user = null, clientNonce = null;
        foreach (var attribute in _clientFirstBare.Split(','))
        {
            if (attribute.StartsWith("n=", StringComparison.Ordinal)) user = DecodeName(attribute[2..]);
            else if (attribute.StartsWith("r=", StringComparison.Ordinal)) clientNonce = attribute[2..];
            else if (attribute.StartsWith("m=", StringComparison.Ordinal)) return ScramStep.Fail("SCRAM: mandatory extension not supported");
        }
        if (string.IsNullOrEmpty(user) || string.IsNullOrEmpty(clientNonce))
        {
            return ScramStep.Fail("SCRAM client-first-message needs n= and r=");
        }
        UserName = null;
        var entry = _lookup(user);
        byte[] salt;
        int iterations;
        if (entry is not null && entry.Kind == _kind)
        {
            _knownUser = true;
            _saltedPassword = entry.Hash.ToArray();
            salt = entry.Salt.ToArray();
            iterations = entry.Iterations;
        }
        else
        {
            // Made-up credentials: the exchange goes on and fails at the proof, as for a wrong password.
            _knownUser = false;
            _saltedPassword = RandomNumberGenerator.GetBytes(PasswordHash.HashLengthOf(_kind));
            salt = FakeSalt(user);
            iterations = PasswordHash.DefaultIterations;
        }
        _pendingUser = user;
        _nonce = clientNonce + Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        _serverFirst = $"r={_nonce},s={Convert.ToBase64String(salt)},i={iterations}";
        return new ScramStep(ScramOutcome.Continue, Encoding.UTF8.GetBytes(_serverFirst));
    }

    private ScramStep ClientFinal(string message)
    {
        int proofAt = message.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofAt < 0) return ScramStep.Fail("SCRAM client-final-message has no proof");
        string withoutProof = message[..proofAt];
        string? channelBinding = null, nonce = null;
        foreach (var attribute in withoutProof.Split(','))
        {
            if (attribute.StartsWith("c=", StringComparison.Ordinal)) channelBinding = attribute[2..];
            else if (attribute.StartsWith("r=", StringComparison.Ordinal)) nonce = attribute[2..];
        }
        if (channelBinding != Convert.ToBase64String(Encoding.ASCII.GetBytes(_gs2Header!)))
        {
            return ScramStep.Fail("SCRAM channel binding does not match the gs2 header");
        }
        if (nonce != _nonce) return ScramStep.Fail("SCRAM nonce does not match");
        byte[] proof;
        try
        {
            proof = Convert.FromBase64String(message[(proofAt + 3)..]);
        }
        catch (FormatException)
        {
            return ScramStep.Fail("SCRAM proof is not base64");
        }
        var authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{_serverFirst},{withoutProof}");
        var clientKey = HMAC(_saltedPassword!, "Client Key"u8);
        var storedKey = CryptographicOperations.HashData(_hash, clientKey);
        var clientSignature = HMAC(storedKey, authMessage);
        if (proof.Length != clientSignature.Length) return ScramStep.Fail("SCRAM proof has the wrong length");
        var recoveredClientKey = new byte[proof.Length];
        for (int i = 0; i < proof.Length; i++) recoveredClientKey[i] = (byte)(proof[i] ^ clientSignature[i]);
        bool ok = CryptographicOperations.FixedTimeEquals(CryptographicOperations.HashData(_hash, recoveredClientKey), storedKey);
        if (!ok || !_knownUser) return ScramStep.Fail("SCRAM proof does not match (bad user name or password)");
        var serverKey = HMAC(_saltedPassword!, "Server Key"u8);
        var serverSignature = HMAC(serverKey, authMessage);
        UserName = _pendingUser;
        return new ScramStep(ScramOutcome.Success, Encoding.UTF8.GetBytes("v=" + Convert.ToBase64String(serverSignature)));
    }

    private byte[] HMAC(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data) =>
        _hash == HashAlgorithmName.SHA256 ? HMACSHA256.HashData(key, data) : HMACSHA512.HashData(key, data);

    /// <summary>The same made-up salt for the same unknown user, so repeated probes look like a real account.</summary>
    private static byte[] FakeSalt(string user)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes("midge-scram-unknown-user:" + user + ":" + FakeSaltSecret));
        return digest.AsSpan(0, PasswordHash.SaltLength).ToArray();
    }

    private static readonly string FakeSaltSecret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));

    /// <summary>saslname: "=2C" is ',' and "=3D" is '='.</summary>
    private static string DecodeName(string s) => s.Replace("=2C", ",", StringComparison.Ordinal).Replace("=3D", "=", StringComparison.Ordinal);
}
