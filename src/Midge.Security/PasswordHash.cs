using System.Globalization;
using System.Security.Cryptography;

namespace Midge.Security;

/// <summary>The hash kinds of Mosquitto's password file; the value is the number between the first two '$'.</summary>
public enum PasswordHashKind
{
    /// <summary><c>$6$salt$hash</c>: SHA-512 over the password bytes followed by the salt (Mosquitto 1.6 and earlier).</summary>
    Sha512 = 6,

    /// <summary><c>$7$iterations$salt$hash</c>: PBKDF2-HMAC-SHA512 (mosquitto_passwd 2.0's default). Also the
    /// SaltedPassword of SCRAM-SHA-512, so these users can log in with MQTT 5 enhanced authentication.</summary>
    Sha512Pbkdf2 = 7,

    /// <summary><c>$8$iterations$salt$hash</c>: PBKDF2-HMAC-SHA256 with a 32-byte hash. Midge's own kind, the
    /// SaltedPassword of SCRAM-SHA-256 (Mosquitto does not read it and skips such lines).</summary>
    Sha256Pbkdf2 = 8,
}

/// <summary>
/// One password entry as Mosquitto writes it: a 12-byte salt and a 64-byte SHA-512 digest, both base64.
/// Immutable; <see cref="Verify"/> compares in constant time.
/// </summary>
public sealed class PasswordHash
{
    /// <summary>Salt length mosquitto_passwd writes and Mosquitto 2.0 requires.</summary>
    public const int SaltLength = 12;

    /// <summary>SHA-512 digest length; Mosquitto 2.0 rejects any other.</summary>
    public const int HashLength = 64;

    /// <summary>The digest length of <paramref name="kind"/>: 32 for <see cref="PasswordHashKind.Sha256Pbkdf2"/>, else 64.</summary>
    public static int HashLengthOf(PasswordHashKind kind) => kind == PasswordHashKind.Sha256Pbkdf2 ? 32 : HashLength;

    /// <summary>PBKDF2 iterations mosquitto_passwd 2.0 uses when -I is not given (PW_DEFAULT_ITERATIONS).</summary>
    public const int DefaultIterations = 101;

    private readonly byte[] _salt;
    private readonly byte[] _hash;

    private PasswordHash(PasswordHashKind kind, int iterations, byte[] salt, byte[] hash)
    {
        Kind = kind;
        Iterations = iterations;
        _salt = salt;
        _hash = hash;
    }

    public PasswordHashKind Kind { get; }

    /// <summary>PBKDF2 iterations; 0 for <see cref="PasswordHashKind.Sha512"/>.</summary>
    public int Iterations { get; }

    public ReadOnlySpan<byte> Salt => _salt;

    public ReadOnlySpan<byte> Hash => _hash;

    /// <summary>Hashes <paramref name="password"/> with a fresh random salt.</summary>
    public static PasswordHash Create(ReadOnlySpan<byte> password, PasswordHashKind kind = PasswordHashKind.Sha512Pbkdf2,
        int iterations = DefaultIterations)
    {
        if (kind != PasswordHashKind.Sha512 && iterations < 1)
            throw new ArgumentOutOfRangeException(nameof(iterations), "Number of iterations must be > 0.");
        if (kind is not (PasswordHashKind.Sha512 or PasswordHashKind.Sha512Pbkdf2 or PasswordHashKind.Sha256Pbkdf2))
            throw new ArgumentOutOfRangeException(nameof(kind));
        var salt = RandomNumberGenerator.GetBytes(SaltLength);
        int it = kind == PasswordHashKind.Sha512 ? 0 : iterations;
        var hash = new byte[HashLengthOf(kind)];
        Compute(password, kind, it, salt, hash);
        return new PasswordHash(kind, it, salt, hash);
    }

    /// <summary>
    /// Parses the part after <c>user:</c>: <c>$6$salt$hash</c> or <c>$7$iterations$salt$hash</c>. The salt must
    /// decode to 12 bytes and the hash to 64, as Mosquitto 2.0 requires. Never throws.
    /// </summary>
    public static bool TryParse(string text, out PasswordHash? hash, out string? error)
    {
        hash = null;
        error = null;
        if (text is null || text.Length == 0 || text[0] != '$')
        {
            error = "not a $6$ or $7$ hash (plain-text password? run `midge passwd -U`)";
            return false;
        }
        var parts = text.Split('$');
        // "$6$s$h" splits into "", "6", "s", "h"; "$7$i$s$h" into "", "7", "i", "s", "h".
        PasswordHashKind kind;
        int iterations = 0;
        int saltIndex;
        if (parts[1] == "6")
        {
            kind = PasswordHashKind.Sha512;
            saltIndex = 2;
            if (parts.Length != 4)
            {
                error = "malformed $6$ hash (expected $6$salt$hash)";
                return false;
            }
        }
        else if (parts[1] is "7" or "8")
        {
            kind = parts[1] == "7" ? PasswordHashKind.Sha512Pbkdf2 : PasswordHashKind.Sha256Pbkdf2;
            saltIndex = 3;
            if (parts.Length != 5)
            {
                error = $"malformed ${parts[1]}$ hash (expected ${parts[1]}$iterations$salt$hash)";
                return false;
            }
            if (!int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out iterations) || iterations < 1)
            {
                error = "invalid hash iterations";
                return false;
            }
        }
        else
        {
            error = "unknown password hash type";
            return false;
        }
        var salt = new byte[SaltLength + 3];
        if (!Convert.TryFromBase64String(parts[saltIndex], salt, out int saltLen) || saltLen != SaltLength)
        {
            error = "unable to decode password salt (must be 12 bytes of base64)";
            return false;
        }
        int length = HashLengthOf(kind);
        var digest = new byte[HashLength + 3];
        if (!Convert.TryFromBase64String(parts[saltIndex + 1], digest, out int hashLen) || hashLen != length)
        {
            error = $"unable to decode password hash (must be {length} bytes of base64)";
            return false;
        }
        hash = new PasswordHash(kind, iterations, salt.AsSpan(0, SaltLength).ToArray(), digest.AsSpan(0, length).ToArray());
        return true;
    }

    /// <summary>Whether <paramref name="password"/> hashes to this entry; constant time in the comparison.</summary>
    public bool Verify(ReadOnlySpan<byte> password)
    {
        Span<byte> computed = stackalloc byte[HashLengthOf(Kind)];
        Compute(password, Kind, Iterations, _salt, computed);
        return CryptographicOperations.FixedTimeEquals(computed, _hash);
    }

    /// <summary>The text after <c>user:</c>, exactly as mosquitto_passwd writes it.</summary>
    public override string ToString() => Kind == PasswordHashKind.Sha512
        ? $"$6${Convert.ToBase64String(_salt)}${Convert.ToBase64String(_hash)}"
        : string.Create(CultureInfo.InvariantCulture, $"${(int)Kind}${Iterations}${Convert.ToBase64String(_salt)}${Convert.ToBase64String(_hash)}");

    /// <summary>A hash of the same kind and cost as this one, of a random password; used for unknown users.</summary>
    internal PasswordHash CreateDummy()
    {
        Span<byte> random = stackalloc byte[16];
        RandomNumberGenerator.Fill(random);
        return Create(random, Kind, Kind == PasswordHashKind.Sha512 ? DefaultIterations : Iterations);
    }

    private static void Compute(ReadOnlySpan<byte> password, PasswordHashKind kind, int iterations, ReadOnlySpan<byte> salt,
        Span<byte> destination)
    {
        if (kind == PasswordHashKind.Sha512)
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA512);
            sha.AppendData(password);
            sha.AppendData(salt);
            sha.GetHashAndReset(destination);
        }
        else
        {
            Rfc2898DeriveBytes.Pbkdf2(password, salt, destination, iterations,
                kind == PasswordHashKind.Sha256Pbkdf2 ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA512);
        }
    }
}
