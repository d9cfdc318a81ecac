using Microsoft.AspNetCore.Http;

namespace Midge.Transport.Http;

/// <summary>The API's OpenAPI 3 document (<c>openapi.json</c> beside this file, embedded in the assembly), served at
/// <c>/api-docs</c> without credentials: it describes the API, it holds nothing of the broker's.</summary>
internal static class OpenApi
{
    private static readonly Lazy<byte[]> Document = new(() =>
    {
        using var stream = typeof(OpenApi).Assembly.GetManifestResourceStream("Midge.Transport.Http.openapi.json")
            ?? throw new InvalidOperationException("the OpenAPI document is not embedded");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    public static Task WriteAsync(HttpContext http)
    {
        var bytes = Document.Value;
        http.Response.StatusCode = 200;
        http.Response.ContentType = "application/json";
        http.Response.ContentLength = bytes.Length;
        return http.Response.Body.WriteAsync(bytes, http.RequestAborted).AsTask();
    }
}
