using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;

namespace Midge.Security;

/// <summary>
/// The HTTP API's keys (<c>api_key_file</c>): one <c>key:secret</c> a line, as EMQX's <c>api_key.bootstrap_file</c>
/// (text after a second ':', EMQX's role, is ignored). The secret is plain text, or hashed as in a password file
/// (<c>$6$</c>, <c>$7$</c>, <c>$8$</c>: what <c>midge apikey</c> and <c>midge passwd</c> write). '#' starts a comment;
/// an entry that cannot be read is dropped and reported in <see cref="Diagnostics"/>. Immutable: a reload makes a new one.
/// </summary>
public sealed class ApiKeyFile
{
    private readonly FrozenDictionary<string, Entry> _keys;
    private readonly PasswordHash _dummy = PasswordHash.Create("x"u8);

    private ApiKeyFile(FrozenDictionary<string, Entry> keys, IReadOnlyList<string> diagnostics)
    {
        _keys = keys;
        Diagnostics = diagnostics;
    }

    /// <summary>No keys: every request with credentials is refused.</summary>
    public static ApiKeyFile Empty { get; } = Parse("", "(none)");

    public int Count => _keys.Count;

    /// <summary>Entries that were dropped, each as <c>file:line: message</c>.</summary>
    public IReadOnlyList<string> Diagnostics { get; }

    /// <summary>Reads <paramref name="path"/>; throws <see cref="SecurityFileException"/> when it cannot be read.</summary>
    public static ApiKeyFile Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path, Encoding.UTF8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new SecurityFileException($"Error: Unable to open api_key_file \"{path}\": {e.Message}", e);
        }
        return Parse(text, path);
    }

    public static ApiKeyFile Parse(string text, string fileName)
    {
        ArgumentNullException.ThrowIfNull(text);
        var keys = new Dictionary<string, Entry>(StringComparer.Ordinal);
        var diagnostics = new List<string>();
        int lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || line[0] == '#' || line.Trim().Length == 0) continue;
            if (!PasswordFile.TrySplitLine(line, out var key, out var secret))
            {
                diagnostics.Add($"{fileName}:{lineNo}: invalid line (expected key:secret), removing entry");
                continue;
            }
            if (secret[0] == '$')
            {
                if (!PasswordHash.TryParse(secret, out var hash, out var why))
                {
                    diagnostics.Add($"{fileName}:{lineNo}: {why} for key {key}, removing entry");
                    continue;
                }
                keys[key] = new Entry(hash, null);
            }
            else
            {
                keys[key] = new Entry(null, SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
            }
        }
        return new ApiKeyFile(keys.ToFrozenDictionary(StringComparer.Ordinal), diagnostics);
    }

    /// <summary>Whether <paramref name="key"/> exists and <paramref name="secret"/> is its secret. Constant time in the
    /// comparison; an unknown key costs a hash as a known one does.</summary>
    public bool Verify(string key, string secret)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(secret);
        var bytes = Encoding.UTF8.GetBytes(secret);
        if (!_keys.TryGetValue(key, out var entry))
        {
            _dummy.Verify(bytes);
            return false;
        }
        if (entry.Hash is { } hash) return hash.Verify(bytes);
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(bytes), entry.Plain);
    }

    private sealed record Entry(PasswordHash? Hash, byte[]? Plain);
}
