using Midge.Config;
using Midge.Security;

namespace Midge.Core.Security;

/// <summary>What guards one listener: who may connect, and what they may touch.</summary>
public sealed class ListenerSecurity(IClientAuthenticator? authenticator, IAclChecker? acl)
{
    public static readonly ListenerSecurity Open = new(null, null);

    /// <summary>Checks user names and passwords; null = no password file (user names are not checked).</summary>
    public IClientAuthenticator? Authenticator { get; } = authenticator;

    /// <summary>Decides publish, subscribe and delivery; null = everything is allowed.</summary>
    public IAclChecker? Acl { get; } = acl;

    /// <summary>The password file entry of a user, for SCRAM; null when the listener has no password file.</summary>
    public Func<string, PasswordHash?>? Credentials { get; } =
        authenticator is PasswordFileAuthenticator files ? user => files.File.GetHash(user) : null;
}

/// <summary>
/// Loads every password and ACL file the configuration names, once per path, and hands each listener its
/// <see cref="ListenerSecurity"/>. <see cref="Reload"/> re-reads the files and swaps them in atomically: the
/// authenticator and checker objects stay the same, so sessions keep their references.
/// </summary>
public sealed class SecurityRegistry
{
    private readonly Dictionary<string, PasswordFileAuthenticator> _passwords = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AclFileChecker> _acls = new(StringComparer.Ordinal);
    private readonly object _sync = new();

    /// <summary>Loads the files of <paramref name="config"/>. Throws <see cref="SecurityFileException"/> or
    /// <see cref="AclFileException"/> naming the file when one cannot be read or parsed.</summary>
    public SecurityRegistry(BrokerConfig config) => Reload(config);

    /// <summary>Notes from the files (ignored lines, partial %u levels), each "file:line: ...", for the log.</summary>
    public IReadOnlyList<string> Diagnostics { get; private set; } = [];

    public ListenerSecurity For(ListenerConfig listener)
    {
        lock (_sync)
        {
            var auth = listener.PasswordFile is { } pw ? _passwords[pw] : null;
            var acl = listener.AclFile is { } af ? _acls[af] : null;
            return auth is null && acl is null ? ListenerSecurity.Open : new ListenerSecurity(auth, acl);
        }
    }

    /// <summary>Re-reads every file the configuration names. Nothing changes unless all of them load.</summary>
    public void Reload(BrokerConfig config)
    {
        var passwordPaths = new HashSet<string>(StringComparer.Ordinal);
        var aclPaths = new HashSet<string>(StringComparer.Ordinal);
        if (config.PasswordFile is { } gpw) passwordPaths.Add(gpw);
        if (config.AclFile is { } gacl) aclPaths.Add(gacl);
        foreach (var l in config.Listeners)
        {
            if (l.PasswordFile is { } pw) passwordPaths.Add(pw);
            if (l.AclFile is { } acl) aclPaths.Add(acl);
        }
        var diagnostics = new List<string>();
        var passwordFiles = new Dictionary<string, PasswordFile>(StringComparer.Ordinal);
        foreach (var path in passwordPaths)
        {
            var file = PasswordFile.Load(path);
            diagnostics.AddRange(file.Diagnostics);
            passwordFiles[path] = file;
        }
        var aclFiles = new Dictionary<string, AclFile>(StringComparer.Ordinal);
        foreach (var path in aclPaths)
        {
            var file = AclFile.Load(path);
            diagnostics.AddRange(file.Diagnostics);
            aclFiles[path] = file;
        }
        lock (_sync)
        {
            foreach (var (path, file) in passwordFiles)
            {
                if (_passwords.TryGetValue(path, out var existing)) existing.Reload(file);
                else _passwords[path] = new PasswordFileAuthenticator(file);
            }
            foreach (var (path, file) in aclFiles)
            {
                if (_acls.TryGetValue(path, out var existing)) existing.Reload(file);
                else _acls[path] = new AclFileChecker(file);
            }
            Diagnostics = diagnostics;
        }
    }
}
