namespace Midge.Core;
