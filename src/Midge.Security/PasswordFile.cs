using System.Collections.Frozen;
using System.Text;

namespace Midge.Security;

/// <summary>Raised when a security file cannot be read at all; <see cref="Exception.Message"/> names the file.</summary>
public sealed class SecurityFileException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// An immutable snapshot of a Mosquitto <c>password_file</c>: one <c>user:hash</c> per line, where hash is
/// <c>$6$salt$hash</c> or <c>$7$iterations$salt$hash</c> (see <see cref="PasswordHash"/>). The broker swaps the whole
/// object on SIGHUP (a reference assignment), so readers never see a half-loaded file.
/// </summary>
/// <remarks>
/// Lines are read as Mosquitto 2.0 reads them: a line starting with '#' is a comment, a line without ':' is skipped
/// (blank lines), the user name and the hash are trimmed of blanks, and text after a second ':' is ignored. An entry
/// whose hash is malformed or plain text is dropped and reported in <see cref="Diagnostics"/> as <c>file:line: ...</c>
/// (Mosquitto logs "removing entry" and keeps running). If a user appears twice, the last valid entry wins. Lines
/// that are not valid UTF-8 are dropped too: decoding them leniently could map two different byte strings onto one
/// user name.
/// </remarks>
public sealed class PasswordFile
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // Declared before Empty: static initializers run in textual order.
    private static readonly Lazy<PasswordHash> DefaultShape = new(() => PasswordHash.Create("x"u8));

    private readonly FrozenDictionary<string, PasswordHash> _users;
    private readonly PasswordHash _dummy;

    private PasswordFile(FrozenDictionary<string, PasswordHash> users, IReadOnlyList<string> diagnostics, string fileName)
    {
        _users = users;
        Diagnostics = diagnostics;
        FileName = fileName;
        _dummy = MostCommonShape(users.Values).CreateDummy();
    }

    /// <summary>An empty file: every login fails.</summary>
    public static PasswordFile Empty { get; } = Parse("", "(empty)");

    /// <summary>The name used in <see cref="Diagnostics"/>.</summary>
    public string FileName { get; }

    /// <summary>Entries that were dropped, each as <c>file:line: message</c>.</summary>
    public IReadOnlyList<string> Diagnostics { get; }

    public int Count => _users.Count;

    /// <summary>What an unknown user's password is checked against (the file's most common kind and cost).</summary>
    internal PasswordHash UnknownUserHash => _dummy;

    public IEnumerable<string> Users => _users.Keys;

    public bool Contains(string user) => _users.ContainsKey(user);

    public PasswordHash? GetHash(string user) => _users.GetValueOrDefault(user);

    /// <summary>Reads and parses <paramref name="path"/>; throws <see cref="SecurityFileException"/> if it cannot be read.</summary>
    public static PasswordFile Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new SecurityFileException($"Error: Unable to open pwfile \"{path}\": {e.Message}", e);
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses the text of a password file.</summary>
    public static PasswordFile Parse(string text, string fileName) => Parse(Encoding.UTF8.GetBytes(text), fileName);

    /// <summary>Parses the raw bytes of a password file (lines that are not UTF-8 are reported and dropped).</summary>
    public static PasswordFile Parse(ReadOnlySpan<byte> bytes, string fileName)
    {
        var users = new Dictionary<string, PasswordHash>(StringComparer.Ordinal);
        var diagnostics = new List<string>();
        int lineNo = 0;
        while (!bytes.IsEmpty)
        {
            lineNo++;
            int nl = bytes.IndexOf((byte)'\n');
            var raw = nl < 0 ? bytes : bytes[..nl];
            bytes = nl < 0 ? default : bytes[(nl + 1)..];
            if (raw.IsEmpty || raw[0] == (byte)'#' || raw.IndexOf((byte)':') < 0) continue;
            string line;
            try
            {
                line = StrictUtf8.GetString(raw);
            }
            catch (DecoderFallbackException)
            {
                diagnostics.Add($"{fileName}:{lineNo}: line is not valid UTF-8, removing entry");
                continue;
            }
            if (!TryParseLine(line, out var user, out var hash, out var error))
            {
                diagnostics.Add($"{fileName}:{lineNo}: {error}");
                continue;
            }
            users[user!] = hash!;
        }
        return new PasswordFile(users.ToFrozenDictionary(StringComparer.Ordinal), diagnostics, fileName);
    }

    /// <summary>
    /// Whether <paramref name="user"/> exists and <paramref name="password"/> (the CONNECT password bytes) matches.
    /// The digest comparison is constant time, and an unknown user is checked against a dummy hash of the file's
    /// usual kind and cost, so a failure takes the same time whether or not the user exists.
    /// </summary>
    public bool Verify(string? user, ReadOnlySpan<byte> password)
    {
        if (user is not null && _users.TryGetValue(user, out var hash))
            return hash.Verify(password);
        _dummy.Verify(password);
        return false;
    }

    /// <summary>Splits one <c>user:hash</c> line as Mosquitto does. Used by <c>midge passwd</c> too.</summary>
    internal static bool TrySplitLine(string line, out string user, out string secret)
    {
        user = "";
        secret = "";
        int colon = line.IndexOf(':');
        if (colon < 0) return false;
        user = line[..colon].Trim(' ', '\t', '\r', '\n', '\v', '\f');
        // strtok skips empty tokens, so "user::hash" has the hash "hash"; text after the next ':' is ignored.
        var rest = line.AsSpan(colon + 1).TrimStart(':');
        int next = rest.IndexOf(':');
        if (next >= 0) rest = rest[..next];
        secret = rest.Trim(" \t\r\n\v\f").ToString();
        return user.Length > 0 && secret.Length > 0;
    }

    private static bool TryParseLine(string line, out string? user, out PasswordHash? hash, out string? error)
    {
        hash = null;
        user = null;
        if (!TrySplitLine(line, out var name, out var secret))
        {
            error = "invalid line (expected user:hash), removing entry";
            return false;
        }
        if (name.Length > 65535)
        {
            error = "username too long, removing entry";
            return false;
        }
        if (!PasswordHash.TryParse(secret, out hash, out var why))
        {
            error = $"{why} for user {name}, removing entry";
            return false;
        }
        user = name;
        error = null;
        return true;
    }

    private static PasswordHash MostCommonShape(IEnumerable<PasswordHash> hashes)
    {
        PasswordHash? best = null;
        int bestCount = 0;
        foreach (var group in hashes.GroupBy(h => (h.Kind, h.Iterations)))
        {
            int n = group.Count();
            if (n > bestCount)
            {
                best = group.First();
                bestCount = n;
            }
        }
        return best ?? DefaultShape.Value;
    }
}
